package cabalsyntax

import "strings"

// DependencyName checks one build-depends entry, "pkg", "pkg >=1 && <2",
// "pkg:sub" or "pkg:{a, b} ^>=1.2", and returns its package name.
func DependencyName(entry string) (string, bool) {
	i := 0
	for i < len(entry) && (isAlnum(entry[i]) || entry[i] == '-') {
		i++
	}
	name, rest := entry[:i], entry[i:]
	if !IsPackageName(name) {
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
				if !IsPackageName(strings.TrimSpace(lib)) {
					return "", false
				}
			}
			rest = rest[end+1:]
		} else {
			j := 0
			for j < len(rest) && (isAlnum(rest[j]) || rest[j] == '-') {
				j++
			}
			if !IsPackageName(rest[:j]) {
				return "", false
			}
			rest = rest[j:]
		}
	}
	return name, IsVersionRange(rest)
}

// IsVersionRange checks the shape of a version range (">=1.2 && <2",
// "^>=4.14", "== 1.*", "-any", "{1.2, 1.3}", or nothing); it does not
// check that the range makes sense.
func IsVersionRange(s string) bool {
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

// IsPackageName checks a package or component name: words of letters and
// digits joined by '-', each word holding a letter.
func IsPackageName(s string) bool {
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

// IsVersion checks a package version: numbers joined by dots.
func IsVersion(s string) bool {
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

// IsModuleName checks a Haskell module name: Capitalised words joined by
// dots.
func IsModuleName(s string) bool {
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

// IsComponentName checks the name of an executable or test suite as cabal
// takes it from a section header: one token of letters, digits, '-', '_',
// '.' and '\” (cabal's own cachix.cabal has "executable
// .cachix-deployment"), not "." or "..", so that it is safe as a file name
// (bin/NAME in a bundle) and in a cabal target (PKG:exe:NAME).
func IsComponentName(s string) bool {
	if s == "" || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '\'' {
			return false
		}
	}
	return true
}

// Unique is a list field's entries without repeats (modules, source
// directories, dependencies: both readers list each once), the first of
// each kept in place; nil stays nil.
func Unique(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(ss))
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
