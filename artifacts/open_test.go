package artifacts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distributive-flow/dflow/artifacts"
	"github.com/distributive-flow/dflow/artifacts/local"
	"github.com/distributive-flow/dflow/artifacts/oci"
)

func TestParse(t *testing.T) {
	base := t.TempDir()
	exe := filepath.Join(base, "bin", "store")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "notes"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		want  artifacts.Spec
		err   string // a part of the error; "" for none
	}{
		{value: "", want: artifacts.Spec{Kind: artifacts.KindLocal}},
		{value: "local", want: artifacts.Spec{Kind: artifacts.KindLocal}},
		{value: "./blobs", want: artifacts.Spec{Kind: artifacts.KindLocal, Dir: filepath.Join(base, "blobs")}},
		{value: "/var/lib/dflow/artifacts", want: artifacts.Spec{Kind: artifacts.KindLocal, Dir: "/var/lib/dflow/artifacts"}},
		{value: "./bin", want: artifacts.Spec{Kind: artifacts.KindLocal, Dir: filepath.Join(base, "bin")}},
		{value: "./bin/store", want: artifacts.Spec{Kind: artifacts.KindPlugin, Path: exe}},
		{value: exe, want: artifacts.Spec{Kind: artifacts.KindPlugin, Path: exe}},
		{value: "oci://ghcr.io/acme/dflow", want: artifacts.Spec{Kind: artifacts.KindOCI, Host: "ghcr.io", Repo: "acme/dflow"}},
		{value: "oci+http://127.0.0.1:5000/dflow", want: artifacts.Spec{Kind: artifacts.KindOCI, Host: "127.0.0.1:5000", Repo: "dflow", PlainHTTP: true}},
		{value: "oci://registry.internal:5000/team/apps/dflow/", want: artifacts.Spec{Kind: artifacts.KindOCI, Host: "registry.internal:5000", Repo: "team/apps/dflow"}},
		{value: "s3://bucket/x", err: `artifact store "s3://bucket/x": unknown scheme "s3"`},
		{value: "https://ghcr.io/acme", err: `unknown scheme "https"`},
		{value: "oci+https://ghcr.io/acme", err: "write oci:// for HTTPS"},
		{value: "oci://ghcr.io", err: "no repository"},
		{value: "oci:///dflow", err: "no registry host"},
		{value: "oci://user:secret@ghcr.io/dflow", err: "credentials do not go in the URL"},
		{value: "oci://ghcr.io/dflow:latest", err: "without a tag or digest"},
		{value: "oci://ghcr.io/dflow?x=1", err: "no query"},
		{value: "artifacts", err: `artifact store "artifacts": not a store name; for a directory of that name write ./artifacts`},
		{value: "./notes", err: "not executable"},
	} {
		got, err := artifacts.Parse(c.value, base)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", c.value, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Parse(%q) = %+v, %v; want an error saying %q", c.value, got, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("Parse(%q) = %+v; want %+v", c.value, got, c.want)
		}
		if c.err != "" && err != nil && !strings.Contains(err.Error(), "oci://HOST[:PORT]/REPO") {
			t.Errorf("Parse(%q): error %q does not say what forms a store takes", c.value, err)
		}
		if c.err == "" && got.Kind != artifacts.KindPlugin && got.Kind != artifacts.KindLocal {
			if again, err := artifacts.Parse(got.String(), base); err != nil || again != got {
				t.Errorf("Parse(%q.String() = %q) = %+v, %v; want %+v", c.value, got.String(), again, err, got)
			}
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s, err := artifacts.Open(ctx, "local", artifacts.Options{Base: base, LocalDir: filepath.Join(base, ".dflow", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := s.(*local.Store); !ok || l.Dir() != filepath.Join(base, ".dflow", "artifacts") {
		t.Fatalf("Open(local) = %T %v", s, s)
	}
	if _, err := artifacts.Open(ctx, "local", artifacts.Options{}); err == nil || !strings.Contains(err.Error(), "LocalDir") {
		t.Fatalf("Open(local) without a directory: %v", err)
	}
	s, err = artifacts.Open(ctx, "./other", artifacts.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := s.(*local.Store); !ok || l.Dir() != filepath.Join(base, "other") {
		t.Fatalf("Open(./other) = %T %v", s, s)
	}
	s, err = artifacts.Open(ctx, "oci+http://127.0.0.1:5000/team/dflow", artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := s.(*oci.Store); !ok || o.String() != "127.0.0.1:5000/team/dflow" {
		t.Fatalf("Open(oci+http://...) = %T %v", s, s)
	}
	if _, err := artifacts.Open(ctx, "oci://ghcr.io/Team/DFlow", artifacts.Options{}); err == nil {
		t.Fatal("Open of an invalid repository name (upper case): no error")
	}
	if _, err := artifacts.Open(ctx, "ftp://x/y", artifacts.Options{}); err == nil || !strings.Contains(err.Error(), `"ftp://x/y"`) {
		t.Fatalf("Open(ftp://...): %v; want an error naming the value", err)
	}
}
