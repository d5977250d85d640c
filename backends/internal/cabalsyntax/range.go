package cabalsyntax

import (
	"fmt"
	"strconv"
	"strings"
)

// InVersionRange reports whether version v (such as 9.6.7) is in the Cabal
// version range r: ">= 9.2 && < 9.10", "==9.10.*", "^>=9.6", "> 9.11 ||
// (>= 8 && < 9)", "== { 9.4.8, 9.6.7 }", "-any", "-none", or nothing (any
// version). As in cabal, versions compare number by number and a prefix
// sorts first (9.10 < 9.10.1); ==X.* is >=X && <X with its last number
// plus one; ^>=X.Y.Z is >=X.Y.Z && <X.(Y+1). A range that does not parse
// is an error that says where.
func InVersionRange(v, r string) (bool, error) {
	ver, err := parseVersion(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("version %q: %v", clip(v), err)
	}
	if strings.TrimSpace(r) == "" {
		return true, nil
	}
	p := &rangeParser{src: r, v: ver}
	in, err := p.or()
	if err != nil {
		return false, err
	}
	if p.skip(); p.pos < len(p.src) {
		return false, fmt.Errorf("unexpected %q in version range %q", clip(p.src[p.pos:]), clip(r))
	}
	return in, nil
}

// rangeParser parses and evaluates one version range for one version.
type rangeParser struct {
	src   string
	pos   int
	depth int
	v     []int
}

func (p *rangeParser) skip() {
	for p.pos < len(p.src) && isBlank(p.src[p.pos]) {
		p.pos++
	}
}

func (p *rangeParser) accept(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *rangeParser) errorf(format string, args ...any) error {
	return fmt.Errorf("version range %q: %s", clip(p.src), fmt.Sprintf(format, args...))
}

func (p *rangeParser) or() (bool, error) {
	in, err := p.and()
	for err == nil && p.accept("||") {
		var r bool
		r, err = p.and()
		in = in || r
	}
	return in, err
}

func (p *rangeParser) and() (bool, error) {
	in, err := p.atom()
	for err == nil && p.accept("&&") {
		var r bool
		r, err = p.atom()
		in = in && r
	}
	return in, err
}

func (p *rangeParser) atom() (bool, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxCondDepth {
		return false, p.errorf("nested too deeply")
	}
	switch {
	case p.accept("("):
		in, err := p.or()
		if err != nil {
			return false, err
		}
		if !p.accept(")") {
			return false, p.errorf("missing ')'")
		}
		return in, nil
	case p.accept("-any"):
		return true, nil
	case p.accept("-none"):
		return false, nil
	}
	var op string
	for _, o := range []string{"^>=", ">=", "<=", "==", ">", "<"} {
		if p.accept(o) {
			op = o
			break
		}
	}
	if op == "" {
		p.skip()
		if p.pos == len(p.src) {
			return false, p.errorf("ends too early")
		}
		return false, p.errorf("want an operator (==, >=, >, <=, <, ^>=) at %q", clip(p.src[p.pos:]))
	}
	if p.accept("{") {
		// A set: == { 1.2, 1.3 } is one of them, ^>= { 1.2, 1.3 } any
		// of their major ranges.
		inAny := false
		for {
			in, err := p.bound(op)
			if err != nil {
				return false, err
			}
			inAny = inAny || in
			if p.accept("}") {
				break
			}
			if !p.accept(",") {
				return false, p.errorf("want ',' or '}' in a version set")
			}
		}
		if op != "==" && op != "^>=" {
			return false, p.errorf("a version set { ... } goes with == or ^>=, not %s", op)
		}
		return inAny, nil
	}
	return p.bound(op)
}

// bound reads one version after op and says whether p.v satisfies it.
func (p *rangeParser) bound(op string) (bool, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && (p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '.' || p.src[p.pos] == '*') {
		p.pos++
	}
	text := p.src[start:p.pos]
	wild := strings.HasSuffix(text, ".*")
	ver, err := parseVersion(strings.TrimSuffix(text, ".*"))
	if err != nil {
		return false, p.errorf("%q after %s: %v", clip(text), op, err)
	}
	if wild {
		if op != "==" {
			return false, p.errorf("a wildcard version %s goes with ==, not %s", text, op)
		}
		upper := append([]int(nil), ver...)
		upper[len(upper)-1]++
		return compare(p.v, ver) >= 0 && compare(p.v, upper) < 0, nil
	}
	c := compare(p.v, ver)
	switch op {
	case "==":
		return c == 0, nil
	case ">=":
		return c >= 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	case "<":
		return c < 0, nil
	}
	// ^>= X.Y...: >= X.Y... && < X.(Y+1)
	upper := []int{ver[0], 1}
	if len(ver) > 1 {
		upper = []int{ver[0], ver[1] + 1}
	}
	return c >= 0 && compare(p.v, upper) < 0, nil
}

// parseVersion reads numbers joined by dots.
func parseVersion(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("missing version")
	}
	var out []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || strings.Trim(part, "0123456789") != "" {
			return nil, fmt.Errorf("want numbers joined by dots")
		}
		out = append(out, n)
	}
	return out, nil
}

// compare orders versions as cabal does: number by number, a prefix first.
func compare(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}
