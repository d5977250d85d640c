package cabal

// These are the parts of the .cabal reader that other package readers share
// (the hpack reader reads the same conditions, dependencies and names).

// EvalCondition evaluates a Cabal condition, the language of .cabal if:
// and of hpack's when: condition: (true, false, flag(NAME), os(NAME),
// arch(NAME), impl(COMPILER [RANGE]), !, &&, || and parentheses), as Parse
// does: for linux on this machine's architecture, impl(ghc ...) true. flags
// maps lowercased flag names to their values; an undefined flag is an
// error.
func EvalCondition(src string, flags map[string]bool) (bool, error) {
	return evalCondition(src, flags, host())
}

// DependencyName checks one build-depends entry ("pkg", "pkg >=1 && <2",
// "pkg:sub", "pkg:{a, b} ^>=1.2") and returns its package name.
func DependencyName(entry string) (string, bool) { return dependencyName(entry) }

// IsVersionRange checks the shape of a version range (">=1.2 && <2",
// "^>=4.14", "== 1.*", "-any", or nothing).
func IsVersionRange(s string) bool { return isVersionRange(s) }

// IsPackageName checks a package or component name: words of letters and
// digits joined by '-', each word holding a letter.
func IsPackageName(s string) bool { return isPackageName(s) }

// IsVersion checks a package version: numbers joined by dots.
func IsVersion(s string) bool { return isVersion(s) }

// IsModuleName checks a Haskell module name: Capitalised words joined by
// dots.
func IsModuleName(s string) bool { return isModuleName(s) }
