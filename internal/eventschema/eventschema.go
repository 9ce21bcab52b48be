// Package eventschema checks gantry's JSON events against their published
// schema (progress.Schema), for the tests of the event stream.
package eventschema

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gantry-dev/gantry/progress"
)

const schemaURL = "https://github.com/gantry-dev/gantry/progress/events.schema.json"

// Compile compiles progress.Schema, asserting formats (date-time).
func Compile() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(progress.Schema))
	if err != nil {
		return nil, fmt.Errorf("events.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
}

// ValidateStream checks that out is JSON lines, each an event valid under
// the schema, and returns the events decoded.
func ValidateStream(out []byte) ([]map[string]any, error) {
	schema, err := Compile()
	if err != nil {
		return nil, err
	}
	var events []map[string]any
	for i, line := range bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n")) {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			return events, fmt.Errorf("line %d is not JSON: %w: %s", i+1, err, line)
		}
		if err := schema.Validate(inst); err != nil {
			return events, fmt.Errorf("line %d does not match the schema: %w\n%s", i+1, err, line)
		}
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			return events, err
		}
		events = append(events, ev)
	}
	return events, nil
}
