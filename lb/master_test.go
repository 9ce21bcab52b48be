package lb

import (
	"testing"

	"github.com/gantry-dev/gantry/lb/lbtest"
)

// fakeMaster starts a fake nginx master (see lbtest.FakeMaster).
func fakeMaster(t *testing.T, accept bool) (pidFile, reload string) {
	t.Helper()
	return lbtest.FakeMaster(t, accept)
}
