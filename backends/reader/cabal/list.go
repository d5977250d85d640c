package cabal

import (
	"fmt"
	"strings"

	"github.com/distributive-flow/dflow/backends/internal/cabalsyntax"
)

// This file reads field values: lists, dependencies, names and flags.

// joined is a field's value as one line of text.
func (e element) joined() string {
	parts := make([]string, 0, len(e.value))
	for _, v := range e.value {
		if v.text != "" {
			parts = append(parts, v.text)
		}
	}
	return strings.Join(parts, " ")
}

// words splits a list field's value: items are separated by commas and
// blanks (leading and trailing commas are fine), and a "quoted string" may
// hold either.
func words(e element) ([]string, error) {
	var out []string
	for _, v := range e.value {
		s := v.text
		for i := 0; i < len(s); {
			switch {
			case s[i] == ',' || isBlank(s[i]):
				i++
			case s[i] == '"':
				w, n, ok := quoted(s[i:])
				if !ok {
					return nil, fieldErr(e, v.line, "unterminated string %s", clip(s[i:]))
				}
				out = append(out, w)
				i += n
			default:
				j := i
				for j < len(s) && s[j] != ',' && !isBlank(s[j]) {
					j++
				}
				out = append(out, s[i:j])
				i = j
			}
		}
	}
	return out, nil
}

// quoted reads the string literal s starts with: its contents, its length
// in s, and whether it is terminated.
func quoted(s string) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			if i+1 < len(s) {
				i++
			}
		}
		b.WriteByte(s[i])
	}
	return "", 0, false
}

// single is the value of a field that holds one item, such as main-is.
func single(e element) (string, error) {
	ws, err := words(e)
	if err != nil {
		return "", err
	}
	if len(ws) != 1 {
		return "", fieldErr(e, e.line, "want one value, got %q", clip(e.joined()))
	}
	return ws[0], nil
}

// dependencies reads build-depends: a comma-separated list of packages with
// optional sub-libraries and version ranges. It returns the package names.
func dependencies(e element) ([]string, error) {
	var names []string
	var cur strings.Builder
	curLine, braces, empty := e.line, 0, true
	flush := func() error {
		entry := strings.TrimSpace(cur.String())
		cur.Reset()
		empty = true
		if entry == "" {
			return nil
		}
		name, ok := cabalsyntax.DependencyName(entry)
		if !ok {
			return fieldErr(e, curLine, "invalid dependency %q (want a package name and an optional version range, separated from the next by a comma)", clip(entry))
		}
		names = append(names, name)
		return nil
	}
	for _, v := range e.value {
		for i := 0; i < len(v.text); i++ {
			c := v.text[i]
			if empty && !isBlank(c) && c != ',' {
				curLine, empty = v.line, false
			}
			switch {
			case c == '{':
				braces++
			case c == '}':
				braces--
			case c == ',' && braces <= 0:
				if err := flush(); err != nil {
					return nil, err
				}
				continue
			}
			cur.WriteByte(c)
		}
		cur.WriteByte(' ')
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return names, nil
}

// boolean reads a True/False field.
func boolean(e element) (bool, error) {
	switch strings.ToLower(e.joined()) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fieldErr(e, e.line, "want True or False, got %q", clip(e.joined()))
}

// fieldErr is an error in the value of field e, found on line.
func fieldErr(e element, line int, format string, args ...any) error {
	return &ParseError{Line: line, Msg: e.name + ": " + fmt.Sprintf(format, args...)}
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
