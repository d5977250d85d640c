package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/spf13/cobra"
)

// versionRow is one node of `dflow versions`.
type versionRow struct {
	Index     int               `json:"index"`
	Address   string            `json:"address"`
	AppURL    string            `json:"app_url"`
	Serving   string            `json:"serving"`    // version behind the public port, "" when none
	ServingID string            `json:"serving_id"` // its process instance
	Others    []string          `json:"others"`     // the other versions present (running or kept)
	Processes []api.ProcessInfo `json:"processes"`
	Error     string            `json:"error,omitempty"`
}

// nodeVersions asks every recorded node's agent what it runs.
func nodeVersions(ctx context.Context, cfg deploy.Config) ([]versionRow, *activities.Backends, deploy.State, error) {
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return nil, nil, deploy.State{}, err
	}
	st, err := b.Store.Load(ctx)
	if err != nil {
		b.Close()
		return nil, nil, deploy.State{}, err
	}
	rows := make([]versionRow, len(st.Nodes))
	var wg sync.WaitGroup
	for i, n := range st.Nodes {
		rows[i] = versionRow{Index: n.Index, Address: n.Address, AppURL: "http://" + net.JoinHostPort(n.Address, strconv.Itoa(cfg.App.Port)) + "/", Others: []string{}}
		wg.Add(1)
		go func(r *versionRow, n deploy.Node) {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l, err := api.NewClient(n.AgentURL, n.ID, b.Signer).Processes(qctx)
			if err != nil {
				r.Error = err.Error()
				return
			}
			if l.AppListen != "" {
				r.AppURL = "http://" + l.AppListen + "/"
			}
			r.Processes = l.Processes
			r.ServingID = l.Serving
			seen := map[string]bool{}
			for _, p := range l.Processes {
				if p.ID == l.Serving {
					r.Serving = p.Version
				}
			}
			for _, p := range l.Processes {
				if p.Version != r.Serving && !seen[p.Version] {
					seen[p.Version] = true
					r.Others = append(r.Others, p.Version)
				}
			}
			sort.Strings(r.Others)
		}(&rows[i], n)
	}
	wg.Wait()
	return rows, b, st, nil
}

func newVersionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "Show which version every node serves, and the others it holds",
		Long: `Ask every node's agent which version serves behind its public port (the git commit of
the build) and which other versions are present (running beside it, draining, or stopped
and kept). -o json gives per node: index, address, app_url, serving, serving_id, others
and every process with its state.`,
		Example: `  dflow versions
  dflow versions -o json | jq -r '.[] | "\(.index) \(.serving)"'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, cfg, err := outputAndConfig(cmd)
			if err != nil {
				return err
			}
			rows, b, _, err := nodeVersions(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer b.Close()
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(os.Stderr, "no nodes; `dflow set 3` makes three")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tAPP URL\tSERVING\tPROCESS\tOTHER VERSIONS")
			serving := map[string]bool{}
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(tw, "%d\t%s\t?\t-\tunreachable: %s\n", r.Index, r.AppURL, r.Error)
					continue
				}
				s := "-"
				if r.Serving != "" {
					s = deploy.ShortVersion(r.Serving)
				}
				serving[r.Serving] = true
				others := make([]string, len(r.Others))
				for i, o := range r.Others {
					others[i] = deploy.ShortVersion(o)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.AppURL, s, dash(r.ServingID), dash(strings.Join(others, ", ")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(serving) > 1 {
				fmt.Fprintln(os.Stderr, "dflow: note: the nodes serve different versions")
			}
			return nil
		},
	}
	addFlags(cmd, "store")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// checksumRow is one process of `dflow compare-checksums`.
type checksumRow struct {
	Index    int    `json:"index"`
	Process  string `json:"process,omitempty"`
	Version  string `json:"version,omitempty"`
	Path     string `json:"path,omitempty"`
	Expected string `json:"expected,omitempty"` // sha256 of the local build
	Actual   string `json:"actual,omitempty"`   // recomputed on the node
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
}

func newCompareChecksumsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare-checksums",
		Short: "Recompute the executable's sha256 on every node and compare it with the local build",
		Long: `For every version running on every node, have the node's agent recompute the sha256 of
the executable on its disk now, and compare it with the sha256 dflow recorded when it built
that version here. Lists the mismatching nodes and exits 1 on any mismatch (2 when a node
could not be checked).`,
		Example: `  dflow compare-checksums
  dflow compare-checksums -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, cfg, err := outputAndConfig(cmd)
			if err != nil {
				return err
			}
			rows, err := compareChecksums(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			bad, unknown := 0, 0
			for _, r := range rows {
				switch {
				case r.Error != "":
					unknown++
				case !r.OK:
					bad++
				}
			}
			if asJSON {
				if err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INDEX\tPROCESS\tPATH\tEXPECTED\tON NODE\tRESULT")
				for _, r := range rows {
					res := "ok"
					switch {
					case r.Error != "":
						res = "unchecked: " + r.Error
					case !r.OK:
						res = "MISMATCH"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Index, dash(r.Process), dash(r.Path), dash(short12(r.Expected)), dash(short12(r.Actual)), res)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			switch {
			case bad > 0:
				var idx []string
				for _, r := range rows {
					if r.Error == "" && !r.OK {
						idx = append(idx, strconv.Itoa(r.Index))
					}
				}
				return &exitError{code: 1, err: fmt.Errorf("compare-checksums: %d mismatching (nodes %s): the executable on the node is not what was built", bad, strings.Join(idx, ", "))}
			case unknown > 0:
				return &exitError{code: 2, err: fmt.Errorf("compare-checksums: %d could not be checked", unknown)}
			}
			return nil
		},
	}
	addFlags(cmd, "store")
	return cmd
}

func compareChecksums(ctx context.Context, cfg deploy.Config) ([]checksumRow, error) {
	nodes, b, st, err := nodeVersions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	targets := map[string]deploy.Target{}
	for _, t := range st.Builds {
		targets[t.Digest] = t
	}
	for _, r := range st.Releases {
		targets[r.Digest] = r.Target
	}
	byIndex := map[int]deploy.Node{}
	for _, n := range st.Nodes {
		byIndex[n.Index] = n
	}
	var rows []checksumRow
	for _, nv := range nodes {
		if nv.Error != "" {
			rows = append(rows, checksumRow{Index: nv.Index, Error: "node unreachable: " + nv.Error})
			continue
		}
		checked := 0
		for _, p := range nv.Processes {
			if !p.Alive() {
				continue
			}
			checked++
			row := checksumRow{Index: nv.Index, Process: p.ID, Version: p.Version}
			t, ok := targets[p.Digest]
			exe, found := t.Executable(cfg.App.Executable)
			if !ok || !found {
				row.Error = fmt.Sprintf("digest %s is not a build this control plane knows", short12(p.Digest))
				rows = append(rows, row)
				continue
			}
			row.Path, row.Expected = exe.Path, exe.SHA256
			qctx, cancel := context.WithTimeout(ctx, time.Minute)
			sum, err := api.NewClient(byIndex[nv.Index].AgentURL, byIndex[nv.Index].ID, b.Signer).Checksum(qctx, p.Digest, exe.Path)
			cancel()
			var api *api.APIError
			switch {
			case errors.As(err, &api) && api.Status == 404:
				row.Actual = "missing"
			case err != nil:
				row.Error = err.Error()
			default:
				row.Actual = sum
				row.OK = sum == exe.SHA256
			}
			rows = append(rows, row)
		}
		if checked == 0 {
			rows = append(rows, checksumRow{Index: nv.Index, Error: "nothing runs on the node"})
		}
	}
	return rows, nil
}
