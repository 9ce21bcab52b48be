package names

import (
	"math/rand"
	"reflect"
	"testing"
)

func TestCompareNatural(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"host2", "host10", -1},
		{"host10", "host2", 1},
		{"host10", "host10", 0},
		{"web-9", "web-10", -1},
		{"a", "b", -1},
		{"host", "host1", -1},
		{"host1", "host1a", -1},
		{"host1a", "host2", -1},
		{"h01", "h1", -1}, // equal numbers: string order, so the order is total
		{"h1", "h01", 1},
		{"h007", "h8", -1},
		{"10.0.0.9", "10.0.0.10", -1},
		{"db", "web", -1},
		{"Web", "web", -1},
		{"x99999999999999999999999", "x100000000000000000000000", -1}, // beyond int64
		{"", "a", -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSortNatural(t *testing.T) {
	want := []string{"host1", "host2", "host3", "host9", "host10", "host11", "host20", "host100", "lb1", "lb2", "lb10"}
	for i := 0; i < 20; i++ {
		got := append([]string(nil), want...)
		rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		Sort(got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Sort = %q, want %q", got, want)
		}
	}
}
