package cabal

import (
	"fmt"
	"strings"
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
		name, ok := dependencyName(entry)
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

// dependencyName checks one build-depends entry, "pkg", "pkg >=1 && <2",
// "pkg:sub" or "pkg:{a, b} ^>=1.2", and returns its package name.
func dependencyName(entry string) (string, bool) {
	i := 0
	for i < len(entry) && (isAlnum(entry[i]) || entry[i] == '-') {
		i++
	}
	name, rest := entry[:i], entry[i:]
	if !isPackageName(name) {
		return "", false
	}
	if strings.HasPrefix(rest, ":") {
		rest = strings.TrimLeft(rest[1:], " \t")
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", false
			}
			for _, lib := range strings.Split(rest[1:end], ",") {
				if !isPackageName(strings.TrimSpace(lib)) {
					return "", false
				}
			}
			rest = rest[end+1:]
		} else {
			j := 0
			for j < len(rest) && (isAlnum(rest[j]) || rest[j] == '-') {
				j++
			}
			if !isPackageName(rest[:j]) {
				return "", false
			}
			rest = rest[j:]
		}
	}
	return name, isVersionRange(rest)
}

// isVersionRange checks the shape of a version range (">=1.2 && <2",
// "^>=4.14", "== 1.*", "-any", "{1.2, 1.3}", or nothing); it does not
// check that the range makes sense.
func isVersionRange(s string) bool {
	s = strings.ReplaceAll(s, "-any", " ")
	s = strings.ReplaceAll(s, "-none", " ")
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789.*<>=^&|(){}, \t", rune(s[i])) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isPackageName checks a package or component name: words of letters and
// digits joined by '-', each word holding a letter.
func isPackageName(s string) bool {
	if s == "" {
		return false
	}
	for _, w := range strings.Split(s, "-") {
		letter := false
		for i := 0; i < len(w); i++ {
			if !isAlnum(w[i]) {
				return false
			}
			letter = letter || !(w[i] >= '0' && w[i] <= '9')
		}
		if !letter {
			return false
		}
	}
	return true
}

// isVersion checks a package version: numbers joined by dots.
func isVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, n := range strings.Split(s, ".") {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return false
		}
	}
	return true
}

// isModuleName checks a Haskell module name: Capitalised words joined by
// dots.
func isModuleName(s string) bool {
	if s == "" {
		return false
	}
	for _, w := range strings.Split(s, ".") {
		if w == "" || w[0] < 'A' || w[0] > 'Z' {
			return false
		}
		for i := 1; i < len(w); i++ {
			if !isAlnum(w[i]) && w[i] != '_' && w[i] != '\'' {
				return false
			}
		}
	}
	return true
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
