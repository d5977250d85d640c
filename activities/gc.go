package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
)

// NodeArtifacts lists the digests node n's agent holds.
func (a *Activities) NodeArtifacts(ctx context.Context, ref deploy.ConfigRef, n deploy.Node) ([]string, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	arts, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Artifacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the artifacts of node %d: %w", n.Index, err)
	}
	out := []string{}
	for _, x := range arts {
		out = append(out, x.Digest)
	}
	return out, nil
}

// StoreArtifacts lists the digests in the control plane's artifact store.
func (a *Activities) StoreArtifacts(ctx context.Context, ref deploy.ConfigRef) ([]string, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	blobs, err := b.Artifacts.List()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, x := range blobs {
		out = append(out, x.Digest)
	}
	return out, nil
}

// Removed is what a removal did.
type Removed struct {
	Removed []string `json:"removed"`
	// InUse maps a digest that was not removed to why (a process that is
	// not stopped runs from it).
	InUse map[string]string `json:"in_use,omitempty"`
}

// RemoveFromNode removes digests (bundle and unpacked release) from node n.
// A digest a live process runs from is refused by the agent (409) and
// reported, not failed; removing an absent one is no error.
func (a *Activities) RemoveFromNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node, digests []string) (Removed, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return Removed{}, err
	}
	c := api.NewClient(n.AgentURL, n.ID, b.Signer)
	res := Removed{Removed: []string{}}
	for _, d := range digests {
		err := c.RemoveArtifact(ctx, d)
		var apiErr *api.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict:
			if res.InUse == nil {
				res.InUse = map[string]string{}
			}
			res.InUse[d] = apiErr.Msg
		case err != nil:
			return res, permanent(fmt.Errorf("remove %s from node %d: %w", d[:12], n.Index, err))
		default:
			res.Removed = append(res.Removed, d)
		}
	}
	return res, nil
}

// RemoveFromStore removes digests from the control plane's artifact store.
func (a *Activities) RemoveFromStore(ctx context.Context, ref deploy.ConfigRef, digests []string) ([]string, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, d := range digests {
		if err := b.Artifacts.Remove(d); err != nil {
			return out, fmt.Errorf("remove %s from %s: %w", d, b.Artifacts.Dir(), err)
		}
		out = append(out, d)
	}
	return out, nil
}
