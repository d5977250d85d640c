package hpack_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends/reader/hpack"
	"github.com/distributive-flow/dflow/deploy"
)

// FuzzParse: Parse never panics or hangs, every error is a *ParseError with
// the file and a line, and what it accepts is a usable description.
// Crashers found are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "name: a\n", "defaults: x/y\n", "name: a\nwhen: {condition: flag(x)}\n",
		"name: a\nlibrary: {<<: *x}\n", "_a: &a [*a]\n", "name: a\nflags: {f: {manual: true, default: true}}\nwhen:\n  condition: flag(f)\n  then: {when: {condition: true, dependencies: x}}\n  else: {}\n",
		"name: a\nexecutables: {a: {main: A.B, when: [{condition: os(linux), buildable: false}]}}\n",
		"name: a\ndependencies: {base: 4.5, text: null, x: {git: y}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "pkg/package.yaml"
		// A hang is a crash: the fuzzer keeps the input.
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse took over 5s on %q", data)) })
		defer watchdog.Stop()
		d, err := hpack.Parse(name, data)
		if err != nil {
			var pe *hpack.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
			if pe.File != name || pe.Line < 1 || pe.Msg == "" {
				t.Fatalf("error without file, line or message: %#v", pe)
			}
			return
		}
		if d.Package == "" || d.Version == "" || d.File != name {
			t.Fatalf("accepted without package, version or file: %+v", d)
		}
		for _, c := range append(append([]deploy.Component(nil), d.Executables...), d.TestSuites...) {
			if c.Name == "" || c.MainIs == "" || len(c.SourceDirs) == 0 {
				t.Fatalf("component without name, main or source dirs: %+v", c)
			}
		}
	})
}
