package rollout

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// ErrMutableTag is returned for tags such as "latest" that can point at a
// different build tomorrow.
var ErrMutableTag = errors.New("mutable tag")

// Target is what to deploy: a service and an immutable image tag.
type Target struct {
	Service string
	Tag     string
	// Image is the full reference, <registry>/<repository>:<tag>.
	Image string
}

// mutableTags are tags conventionally moved from build to build.
var mutableTags = map[string]bool{
	"latest": true, "stable": true, "main": true, "master": true, "dev": true,
	"develop": true, "edge": true, "nightly": true, "prod": true, "production": true,
	"staging": true, "release": true, "current": true, "head": true,
}

var serviceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// ParseTarget parses "SERVICE@TAG" and builds the image reference from the
// registry address and the service's repository. Tags that usually move
// (latest, main, ...) are refused unless allowMutable is set.
func ParseTarget(s, registry, repository string, allowMutable bool) (Target, error) {
	svc, tag, ok := strings.Cut(s, "@")
	if !ok || svc == "" || tag == "" {
		return Target{}, fmt.Errorf("target %q: want SERVICE@TAG, e.g. www@3f2c1ab", s)
	}
	if !serviceRE.MatchString(svc) {
		return Target{}, fmt.Errorf("target %q: %q is not a service name", s, svc)
	}
	if strings.HasPrefix(tag, "sha256:") {
		return Target{}, fmt.Errorf("target %q: give the image tag (the build's SHA), not a digest", s)
	}
	if mutableTags[strings.ToLower(tag)] && !allowMutable {
		return Target{}, fmt.Errorf("target %q: %w %q can point at a different build at any time; deploy an immutable tag such as the commit SHA, or pass --allow-mutable-tag", s, ErrMutableTag, tag)
	}
	ref := registry + "/" + repository + ":" + tag
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: image reference %s is malformed: %v", s, ref, err)
	}
	if _, ok := named.(reference.Tagged); !ok {
		return Target{}, fmt.Errorf("target %q: image reference %s has no tag", s, ref)
	}
	return Target{Service: svc, Tag: tag, Image: reference.FamiliarString(named)}, nil
}
