package hpack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file reads the files a package.yaml names: !include FILE (anywhere
// a value goes) and defaults: (a local file, or one hpack fetched from
// GitHub and keeps in its cache).

// maxIncludeDepth bounds files that include files (or defaults that name
// defaults).
const maxIncludeDepth = 16

// source reads the files that !include and local defaults name.
type source interface {
	// open reads rel, relative to the directory of the file from (both
	// as this source names files), and returns the file's name in it.
	open(from, rel string) (string, []byte, error)
}

// osSource reads files from the file system, where a package may name a
// file above its own directory (wire-server's packages share
// ../../package-defaults.yaml).
type osSource struct{}

func (osSource) open(from, rel string) (string, []byte, error) {
	p := rel
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(from), filepath.FromSlash(rel))
	}
	b, err := os.ReadFile(p)
	return p, b, err
}

// fsSource reads files within an fs.FS.
type fsSource struct{ fsys fs.FS }

func (s fsSource) open(from, rel string) (string, []byte, error) {
	p := path.Join(path.Dir(from), rel)
	if path.IsAbs(rel) || !fs.ValidPath(p) {
		return p, nil, fmt.Errorf("%s is outside the package directory", rel)
	}
	b, err := fs.ReadFile(s.fsys, p)
	return p, b, err
}

// includeTag finds "!include FILE" (FILE plain or quoted).
var includeTag = regexp.MustCompile(`!include[ \t]+("[^"]*"|'[^']*'|[^\s,\]\}#]+)`)

// inline replaces every "!include FILE" in data, the text of the file from,
// by the included file's document written on one line in YAML's flow style
// (with its anchors and aliases), as hpack splices an included file in
// before anchors are resolved: an alias in the including file may name an
// anchor of the included one (hspec's "version: *version"), and line numbers
// in the including file stay right. Errors in an included file are reported
// at the !include's line.
func (p *parser) inline(from string, data []byte, depth int) ([]byte, error) {
	if !strings.Contains(string(data), "!include") {
		return data, nil
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		code := line
		if c := commentStart(line); c >= 0 {
			code = line[:c]
		}
		ms := includeTag.FindAllStringSubmatchIndex(code, -1)
		for j := len(ms) - 1; j >= 0; j-- {
			m := ms[j]
			rel := strings.Trim(code[m[2]:m[3]], `"'`)
			text, err := p.include(from, rel, depth)
			if err != nil {
				return nil, errorAt(i+1, "!include %s: %v", clip(rel), err)
			}
			line = line[:m[0]] + text + line[m[1]:]
		}
		lines[i] = line
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// commentStart is where a YAML comment starts on line ('#' at its start or
// after a blank, outside quotes), or -1.
func commentStart(line string) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || line[i-1] == ' ' || line[i-1] == '\t' || strings.IndexByte("[{,:-", line[i-1]) >= 0 {
				quote = c
			}
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
	}
	return -1
}

// include reads the file rel names and returns its document in flow style.
func (p *parser) include(from, rel string, depth int) (string, error) {
	if p.src == nil {
		return "", fmt.Errorf("cannot read other files here (Parse reads one file; Read and ParseFS read the files it names)")
	}
	if depth >= maxIncludeDepth {
		return "", fmt.Errorf("files include each other more than %d deep", maxIncludeDepth)
	}
	name, data, err := p.src.open(from, rel)
	if err != nil {
		return "", err
	}
	data, err = p.inline(name, data, depth+1)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	doc, err := decode(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var b strings.Builder
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return "null", nil
	}
	if err := flow(&b, doc.Content[0], 0); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return b.String(), nil
}

// flow writes n on one line in YAML's flow style, keeping its tags,
// anchors and aliases.
func flow(b *strings.Builder, n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested too deeply")
	}
	if b.Len() > 1<<20 {
		return fmt.Errorf("too large")
	}
	if n.Anchor != "" {
		b.WriteString("&" + n.Anchor + " ")
	}
	switch n.Kind {
	case yaml.AliasNode:
		b.WriteString("*" + n.Value)
	case yaml.MappingNode:
		b.WriteString("{")
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Style == 0) {
				b.WriteString("<<")
			} else if err := flow(b, k, depth+1); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := flow(b, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		b.WriteString("}")
	case yaml.SequenceNode:
		b.WriteString("[")
		for i, e := range n.Content {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := flow(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString("]")
	default:
		switch n.Tag {
		case "!!int", "!!float", "!!bool", "!!null":
			b.WriteString(n.Value)
			if n.Value == "" {
				b.WriteString("null")
			}
		default:
			q, _ := json.Marshal(n.Value) // a JSON string is a YAML double-quoted scalar
			if n.Tag != "!!str" && n.Tag != "" {
				b.WriteString(n.Tag + " ")
			}
			b.Write(q)
		}
	}
	return nil
}

// mergedKeys are the fields whose values a package and its defaults both
// contribute to (defaults first), as hpack appends lists; for any other
// field the package's own value wins.
var mergedKeys = map[string]bool{
	"source-dirs": true, "dependencies": true, "when": true,
	"exposed-modules": true, "other-modules": true,
	"generated-exposed-modules": true, "generated-other-modules": true,
}

// withDefaults applies the defaults: field of fields (read from the file
// from), if there is one: the defaults' fields come first, and the
// package's own fields win where both set one that is not a list.
func (p *parser) withDefaults(fields []field, from string, depth int) ([]field, error) {
	i := indexOf(fields, "defaults")
	if i < 0 {
		return fields, nil
	}
	if depth >= maxIncludeDepth {
		return nil, errorAt(fields[i].line, "defaults: defaults name defaults more than %d deep", maxIncludeDepth)
	}
	n, err := p.resolve(fields[i].val)
	if err != nil {
		return nil, err
	}
	specs := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		specs = n.Content
	}
	own := append(append([]field(nil), fields[:i]...), fields[i+1:]...)
	set := map[string]bool{}
	for _, f := range own {
		set[f.key] = true
	}
	var out []field
	for _, spec := range specs {
		name, data, err := p.defaultsFile(spec, from)
		if err != nil {
			return nil, err
		}
		line := nodeLine(spec)
		if data, err = p.inline(name, data, depth+1); err != nil {
			return nil, errorAt(line, "defaults: %s: %v", name, err)
		}
		doc, err := decode(data)
		if err != nil {
			return nil, errorAt(line, "defaults: %s: %v", name, err)
		}
		if doc.Kind == 0 || len(doc.Content) == 0 {
			continue
		}
		dfs, err := p.mapping(doc.Content[0], "defaults "+name)
		if err != nil {
			return nil, errorAt(line, "defaults: %s: %v", name, err)
		}
		if dfs, err = p.withDefaults(dfs, name, depth+1); err != nil {
			return nil, err
		}
		for _, f := range dfs {
			if !set[f.key] || mergedKeys[f.key] {
				f.line = line // errors point at the defaults: that brought it in
				out = append(out, f)
			}
		}
	}
	return append(out, own...), nil
}

// githubDefaults is hpack's short form for defaults on GitHub,
// OWNER/REPO[/PATH]@REF.
var githubDefaults = regexp.MustCompile(`^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)((?:/[^@/]+)*)@(\S+)$`)

// defaultsFile reads the file one defaults: entry names: {local: FILE},
// relative to from; or a file on GitHub (OWNER/REPO@REF, or {github:
// OWNER/REPO, ref: REF, path: PATH}), which dflow reads from hpack's cache
// and never downloads.
func (p *parser) defaultsFile(spec *yaml.Node, from string) (string, []byte, error) {
	spec, err := p.resolve(spec)
	if err != nil {
		return "", nil, err
	}
	line := nodeLine(spec)
	var owner, repo, ref, file string
	switch spec.Kind {
	case yaml.ScalarNode:
		m := githubDefaults.FindStringSubmatch(spec.Value)
		if m == nil {
			return "", nil, errorAt(line, "defaults: %q: want OWNER/REPO@REF, {github: OWNER/REPO, ref: REF}, or {local: FILE}", clip(spec.Value))
		}
		owner, repo, file, ref = m[1], m[2], strings.TrimPrefix(m[3], "/"), m[4]
	case yaml.MappingNode:
		fs, err := p.mapping(spec, "defaults")
		if err != nil {
			return "", nil, err
		}
		get := func(key string) (string, error) {
			if j := indexOf(fs, key); j >= 0 {
				return p.scalar(fs[j].val, "defaults: "+key)
			}
			return "", nil
		}
		local, err := get("local")
		if err != nil {
			return "", nil, err
		}
		if local != "" {
			if p.src == nil {
				return "", nil, errorAt(line, "defaults: local %s: cannot read other files here (Parse reads one file; Read and ParseFS read the files it names)", clip(local))
			}
			name, data, err := p.src.open(from, local)
			if err != nil {
				return "", nil, errorAt(line, "defaults: local %s: %v", clip(local), err)
			}
			return name, data, nil
		}
		gh, err := get("github")
		if err != nil {
			return "", nil, err
		}
		parts := strings.SplitN(gh, "/", 2)
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return "", nil, errorAt(line, "defaults: want {local: FILE} or {github: OWNER/REPO, ref: REF}")
		}
		owner, repo = parts[0], parts[1]
		if ref, err = get("ref"); err != nil {
			return "", nil, err
		}
		if ref == "" {
			return "", nil, errorAt(line, "defaults: github %s: missing ref", clip(gh))
		}
		if file, err = get("path"); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, errorAt(line, "defaults: want OWNER/REPO@REF, {github: OWNER/REPO, ref: REF}, or {local: FILE}, got %s", describe(spec))
	}
	if file == "" {
		file = ".hpack/defaults.yaml" // hpack's default path
	}
	dir := p.hpackDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", nil, errorAt(line, "defaults: %s/%s@%s: find hpack's cache: %v", owner, repo, ref, err)
		}
		dir = filepath.Join(home, ".hpack")
	}
	for _, part := range []string{owner, repo, ref, file} {
		if strings.Contains("/"+part+"/", "/../") {
			return "", nil, errorAt(line, "defaults: %q: .. is not allowed", clip(part))
		}
	}
	cached := filepath.Join(dir, "defaults", owner, repo, ref, filepath.FromSlash(file))
	data, err := os.ReadFile(cached)
	if err != nil {
		return "", nil, errorAt(line, "defaults: %s/%s@%s is on GitHub, and dflow does not download: it reads what hpack cached in %s, which is not there (%v); run hpack once where GitHub is reachable, or copy the file into the project and write defaults: {local: FILE}",
			owner, repo, ref, cached, errors.Unwrap(err))
	}
	return cached, data, nil
}
