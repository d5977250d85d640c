package cabalsyntax

import (
	"fmt"
	"strings"
)

// maxCondDepth bounds the nesting of parentheses and '!' in a condition.
const maxCondDepth = 100

// condition parses and evaluates one if/elif condition. Every part is
// checked, also the parts that do not decide the result.
type condition struct {
	src   string
	pos   int
	depth int
	flags map[string]bool
	pl    Platform
}

// EvalCondition evaluates a Cabal condition, the language of .cabal if:
// and of hpack's when: condition: (true, false, flag(NAME), os(NAME),
// arch(NAME), impl(COMPILER [RANGE]), !, &&, || and parentheses) on pl.
// flags maps lowercased flag names to their values; an undefined flag is an
// error. Every part is checked, also the parts that do not decide the
// result.
func EvalCondition(src string, flags map[string]bool, pl Platform) (bool, error) {
	if strings.TrimSpace(src) == "" {
		return false, fmt.Errorf("missing condition")
	}
	c := &condition{src: src, flags: flags, pl: pl}
	v, err := c.or()
	if err != nil {
		return false, err
	}
	if c.skip(); c.pos < len(c.src) {
		return false, fmt.Errorf("unexpected %q in condition %q", clip(c.src[c.pos:]), clip(src))
	}
	return v, nil
}

func (c *condition) skip() {
	for c.pos < len(c.src) && isBlank(c.src[c.pos]) {
		c.pos++
	}
}

// accept consumes tok if it comes next.
func (c *condition) accept(tok string) bool {
	c.skip()
	if strings.HasPrefix(c.src[c.pos:], tok) {
		c.pos += len(tok)
		return true
	}
	return false
}

func (c *condition) or() (bool, error) {
	v, err := c.and()
	for err == nil && c.accept("||") {
		var r bool
		r, err = c.and()
		v = v || r
	}
	return v, err
}

func (c *condition) and() (bool, error) {
	v, err := c.not()
	for err == nil && c.accept("&&") {
		var r bool
		r, err = c.not()
		v = v && r
	}
	return v, err
}

func (c *condition) not() (bool, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxCondDepth {
		return false, fmt.Errorf("condition %q nested too deeply", clip(c.src))
	}
	if c.accept("!") {
		v, err := c.not()
		return !v, err
	}
	return c.atom()
}

func (c *condition) atom() (bool, error) {
	if c.accept("(") {
		v, err := c.or()
		if err != nil {
			return false, err
		}
		if !c.accept(")") {
			return false, fmt.Errorf("missing ')' in condition %q", clip(c.src))
		}
		return v, nil
	}
	start := c.pos
	for c.pos < len(c.src) && isNameChar(c.src[c.pos]) {
		c.pos++
	}
	word := strings.ToLower(c.src[start:c.pos])
	if word == "" {
		if c.pos == len(c.src) {
			return false, fmt.Errorf("condition %q ends too early", clip(c.src))
		}
		return false, fmt.Errorf("unexpected %q in condition %q", clip(c.src[c.pos:]), clip(c.src))
	}
	if c.accept("(") {
		arg, err := c.argument()
		if err != nil {
			return false, err
		}
		return c.call(word, arg)
	}
	switch word {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("unknown %q in condition %q (want true, false, flag(..), os(..), arch(..) or impl(..))", clip(word), clip(c.src))
}

// argument reads a call's argument up to the matching ')'.
func (c *condition) argument() (string, error) {
	start, depth := c.pos, 0
	for ; c.pos < len(c.src); c.pos++ {
		switch c.src[c.pos] {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				arg := c.src[start:c.pos]
				c.pos++
				return strings.TrimSpace(arg), nil
			}
			depth--
		}
	}
	return "", fmt.Errorf("missing ')' in condition %q", clip(c.src))
}

func (c *condition) call(fn, arg string) (bool, error) {
	if fn == "impl" {
		// impl(ghc) and impl(ghc >= 9.2): true when the GHC that builds
		// is in the range; any other compiler is false.
		i := 0
		for i < len(arg) && isNameChar(arg[i]) {
			i++
		}
		compiler, versions := arg[:i], arg[i:]
		if compiler == "" {
			return false, fmt.Errorf("impl(%s): want a compiler and a version range in condition %q", clip(arg), clip(c.src))
		}
		in, err := InVersionRange(c.pl.GHC, versions)
		if err != nil {
			return false, fmt.Errorf("impl(%s): %v in condition %q", clip(arg), err, clip(c.src))
		}
		return strings.EqualFold(compiler, "ghc") && in, nil
	}
	if !isName(arg) {
		return false, fmt.Errorf("%s(%s): want a single name in condition %q", clip(fn), clip(arg), clip(c.src))
	}
	switch fn {
	case "flag":
		v, ok := c.flags[strings.ToLower(arg)]
		if !ok {
			return false, fmt.Errorf("undefined flag %q in condition %q (no flag stanza declares it)", clip(arg), clip(c.src))
		}
		return v, nil
	case "os":
		return strings.EqualFold(arg, c.pl.OS), nil
	case "arch":
		return c.pl.isArch(arg), nil
	}
	return false, fmt.Errorf("unknown function %s(..) in condition %q (want flag, os, arch or impl)", clip(fn), clip(c.src))
}

// IsName reports whether s is a non-empty run of the characters of a flag
// or other simple name: letters, digits, '-', '_' and '.'.
func IsName(s string) bool { return isName(s) }

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
