package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// Handlers are the backends a Go plugin serves; nil ones are not offered.
type Handlers struct {
	VM      backends.VMBackend
	Store   backends.Store
	Reader  backends.PackageReader
	Builder backends.Builder
	// Container serves the container kind.
	Container backends.ContainerBackend
}

func (h Handlers) kinds() []string {
	out := []string{}
	if h.VM != nil {
		out = append(out, KindVM)
	}
	if h.Store != nil {
		out = append(out, KindStore)
	}
	if h.Reader != nil {
		out = append(out, KindReader)
	}
	if h.Builder != nil {
		out = append(out, KindBuilder)
	}
	if h.Container != nil {
		out = append(out, KindContainer)
	}
	return out
}

// Serve answers one plugin call: args are the plugin's arguments (the verb),
// the request is read from in and the answer written to out. It returns the
// process exit status: 0 when an answer was written (also an error answer),
// 2 on a usage error. Errors from the handlers are answered with their code
// (backends.ErrConflict -> "conflict", ...), retryable unless the request
// itself was bad.
func Serve(ctx context.Context, name string, h Handlers, args []string, in io.Reader, out io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s VERB < request.json (protocol %d, see dflow's docs/plugins.md)\n", name, Protocol)
		return 2
	}
	verb := args[0]
	result, err := serve(ctx, name, h, verb, in)
	var answer any
	if err != nil {
		e := struct {
			Code      string `json:"code,omitempty"`
			Message   string `json:"message"`
			Retryable bool   `json:"retryable"`
		}{Message: err.Error(), Retryable: true}
		var bad badRequest
		switch {
		case errors.Is(err, backends.ErrConflict):
			e.Code = CodeConflict
		case errors.Is(err, backends.ErrIndexTaken):
			e.Code = CodeIndexTaken
		case errors.Is(err, backends.ErrNotReady):
			e.Code, e.Retryable = CodeNotReady, false
		case errors.As(err, &bad):
			e.Code, e.Retryable = bad.code, false
		}
		answer = map[string]any{"error": e}
	} else {
		answer = map[string]any{"result": result}
	}
	b, err := json.Marshal(answer)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: encode answer: %v\n", name, verb, err)
		return 1
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: write answer: %v\n", name, verb, err)
		return 1
	}
	return 0
}

type badRequest struct {
	code string
	msg  string
}

func (b badRequest) Error() string { return b.msg }

func serve(ctx context.Context, name string, h Handlers, verb string, in io.Reader) (any, error) {
	raw, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return badRequest{msg: fmt.Sprintf("%s: bad request: %v", verb, err)}
		}
		return nil
	}
	unknown := badRequest{code: CodeUnknownVerb, msg: "unknown verb " + verb}
	empty := struct{}{}
	switch {
	case verb == "describe":
		return Description{Protocol: Protocol, Name: name, Kinds: h.kinds()}, nil
	case h.VM != nil && verb == "vm.create":
		var s deploy.NodeSpec
		if err := decode(&s); err != nil {
			return nil, err
		}
		return h.VM.Create(ctx, s)
	case h.VM != nil && verb == "vm.destroy":
		var n deploy.Node
		if err := decode(&n); err != nil {
			return nil, err
		}
		return empty, h.VM.Destroy(ctx, n)
	case h.VM != nil && verb == "vm.list":
		ns, err := h.VM.List(ctx)
		if ns == nil {
			ns = []deploy.Node{}
		}
		return ns, err
	case h.Store != nil && verb == "store.load":
		return h.Store.Load(ctx)
	case h.Store != nil && verb == "store.save":
		var st deploy.State
		if err := decode(&st); err != nil {
			return nil, err
		}
		return empty, h.Store.Save(ctx, st)
	case h.Store != nil && verb == "store.add":
		var n deploy.Node
		if err := decode(&n); err != nil {
			return nil, err
		}
		i, err := h.Store.Add(ctx, n)
		return AddResult{Index: i}, err
	case h.Store != nil && verb == "store.remove":
		var r RemoveRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		return empty, h.Store.Remove(ctx, r.Index, r.Node)
	case h.Reader != nil && verb == "reader.read":
		var r ReadRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		return h.Reader.Read(ctx, r.Path)
	case h.Builder != nil && verb == "builder.build":
		var r BuildRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		t, err := h.Builder.Build(ctx, r.Desc, backends.BuildOptions{
			Dir: r.Options.Dir, Targets: r.Options.Targets, Env: r.Options.Env, WorkDir: r.Options.WorkDir, Log: os.Stderr,
		})
		return BuildResult{Target: t, BundlePath: t.BundlePath}, err
	case h.Container != nil && verb == "container.containerize":
		var r ContainerizeRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		r.Target.BundlePath = r.BundlePath
		return h.Container.Containerize(ctx, r.Target)
	case h.Container != nil && verb == "container.start":
		var r StartRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		return h.Container.Start(ctx, r.Container, r.Node, r.Options)
	case h.Container != nil && verb == "container.stop":
		var r StopRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		return empty, h.Container.Stop(ctx, r.Process, r.Options)
	}
	return nil, unknown
}
