package cabal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"{",
		"}",
		";",
		":",
		"name: p\nversion: 1\nlibrary {",
		"name: p\nversion: 1\nlibrary\n  if (((\n",
		"name: p\nversion: 1\nlibrary\n  if !!!!flag(\n",
		"name: p\nversion: 1\nlibrary\n  if impl(ghc >= (9\n",
		"name: p\nversion: 1\nlibrary\n  build-depends: a:{b, c\n",
		"name: p\nversion: 1\nlibrary\n  build-depends: a:}\n",
		"name: p\nversion: 1\ndata-files: \"\\\n",
		"name: p\nversion: 1\nlibrary { if true { else { } } }\n",
		"name: p\nversion: 1\nexecutable e\n\tmain-is: M.hs\n        build-depends: base\n",
		"name: p\nversion: 1\ncommon a\n  import: a\n",
		"name: p\nversion: 1\nlibrary\n  exposed-modules: {\n",
		"\xef\xbb\xbf\r\n\r\n--\n-",
		"name: p\nversion: 1\nlibrary\n}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parse("fuzz.cabal", data, linuxX86)
		if err == nil {
			if d.Package == "" || d.Version == "" {
				t.Fatalf("no error but no package name or version: %+v", d)
			}
			return
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error is %T, not *ParseError: %v", err, err)
		}
		if pe.Line < 0 || pe.File != "fuzz.cabal" {
			t.Fatalf("bad position in %v", err)
		}
	})
}
