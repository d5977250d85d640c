package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/artifacts/internal/verify"
	"github.com/distributive-flow/dflow/backends/plugin"
)

// Backend is what a Go plugin serves: the methods, and the contracts, of
// artifacts.Store (declared again here because package artifacts imports
// this one); every artifacts.Store is a Backend.
type Backend interface {
	Put(ctx context.Context, digest string, r io.Reader, size int64) error
	Get(ctx context.Context, digest string) (io.ReadCloser, error)
	Stat(ctx context.Context, digest string) (artifact.Blob, error)
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, digest string) error
}

// Serve answers one call of an artifact-store plugin with b: args are the
// plugin's arguments (the verb), the request is read from in and the answer
// written to out. It returns the exit status: 0 when an answer was written
// (also an error answer), 1 when none could be, 2 on a usage error.
func Serve(ctx context.Context, name string, b Backend, args []string, in io.Reader, out io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s VERB < request.json (protocol %d, see dflow's docs/artifacts.md)\n", name, plugin.Protocol)
		return 2
	}
	var answer any
	result, err := serve(ctx, name, b, args[0], in)
	if err != nil {
		e := struct {
			Code      string `json:"code,omitempty"`
			Message   string `json:"message"`
			Retryable bool   `json:"retryable"`
		}{Message: err.Error(), Retryable: true}
		var bad badRequest
		switch {
		case errors.Is(err, artifact.ErrNotFound):
			e.Code, e.Retryable = CodeNotFound, false
		case errors.Is(err, artifact.ErrDigestMismatch):
			e.Code, e.Retryable = CodeDigestMismatch, false
		case errors.Is(err, verify.ErrInvalidDigest):
			e.Code, e.Retryable = CodeInvalidDigest, false
		case errors.As(err, &bad):
			e.Code, e.Retryable = bad.code, false
		}
		answer = map[string]any{"error": e}
	} else {
		answer = map[string]any{"result": result}
	}
	if err := json.NewEncoder(out).Encode(answer); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: write answer: %v\n", name, args[0], err)
		return 1
	}
	return 0
}

type badRequest struct{ code, msg string }

func (b badRequest) Error() string { return b.msg }

func serve(ctx context.Context, name string, b Backend, verb string, in io.Reader) (any, error) {
	var req struct {
		Digest string `json:"digest"`
		Size   *int64 `json:"size"`
		Path   string `json:"path"`
	}
	if err := json.NewDecoder(in).Decode(&req); err != nil && err != io.EOF {
		return nil, badRequest{msg: fmt.Sprintf("%s: bad request: %v", verb, err)}
	}
	empty := struct{}{}
	switch verb {
	case "describe":
		return plugin.Description{Protocol: plugin.Protocol, Name: name, Kinds: []string{Kind}}, nil
	case VerbPut:
		if req.Path == "" || req.Size == nil {
			return nil, badRequest{msg: VerbPut + `: bad request: want "digest", "size" and "path"`}
		}
		f, err := os.Open(req.Path)
		if err != nil {
			return nil, badRequest{msg: fmt.Sprintf("%s: %v", VerbPut, err)}
		}
		defer f.Close()
		return empty, b.Put(ctx, req.Digest, f, *req.Size)
	case VerbGet:
		if req.Path == "" {
			return nil, badRequest{msg: VerbGet + `: bad request: want "digest" and "path"`}
		}
		return empty, get(ctx, b, req.Digest, req.Path)
	case VerbStat:
		i, err := b.Stat(ctx, req.Digest)
		return StatResult{Digest: i.Digest, Size: i.Size, ModTime: i.ModTime}, err
	case VerbList:
		ds, err := b.List(ctx)
		if ds == nil {
			ds = []string{}
		}
		return ListResult{Digests: ds}, err
	case VerbDelete:
		return empty, b.Delete(ctx, req.Digest)
	}
	return nil, badRequest{code: plugin.CodeUnknownVerb, msg: "unknown verb " + verb}
}

// get writes the bundle to a new file at path; a failed copy leaves none.
func get(ctx context.Context, b Backend, digest, path string) (err error) {
	rc, err := b.Get(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", VerbGet, err)
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("%s sha256:%s: %w", VerbGet, digest, err)
	}
	return nil
}
