package deploy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// HumanBytes prints a byte count for people: 512 B, 3.4 KiB, 12.0 MiB.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Size is a byte count in dflow.yaml: 4GiB, 512MiB, 100MB, or plain bytes.
type Size int64

func (s Size) String() string { return HumanBytes(int64(s)) }

// sizeUnits are the suffixes ParseSize knows, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseSize reads a size: a whole number of bytes, or a number with a unit
// (KiB, MiB, GiB, TiB, KB, MB, GB, TB; K, M, G, T are the binary ones).
func ParseSize(v string) (Size, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("%q is not a size (want e.g. 4GiB, 512MiB or a number of bytes)", v)
	}
	f := n * float64(mult)
	if f >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return Size(f), nil
}
