package agent

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// This file keeps the logs on the node bounded and serves them:
//
//	GET /v1/processes/{id}/log   ?lines=N|all&since=RFC3339&follow=1, text
//	GET /v1/agent/log            the same, of the agent's own log
//
// Rotation: once a second the agent looks at the log of every instance it
// keeps a record of, and at its own log; one larger than Options.LogMaxSize
// is copied to <log>.1 (replacing the previous one) and truncated in place
// ("copytruncate": an app writes to its log through its own descriptor,
// opened for appending, so it goes on writing at the new end). So a log
// takes at most about twice LogMaxSize on disk, plus what was written in
// the second before it was looked at. A line written between the copy and
// the truncation is lost: the price of not copying the app's output
// through the agent.
//
// Since: lines carry no time of their own, so the agent notes once a second
// how long each log is; since=T starts at the length noted last before T.
// Its resolution is that second; for a log the agent has no notes of (the
// agent restarted since), since=T gives all of it when it was written to
// after T, else nothing.

// DefaultLogMaxSize is the default of Options.LogMaxSize: 10 MiB.
const DefaultLogMaxSize = 10 << 20

const (
	logCheckInterval  = time.Second
	logFollowInterval = 200 * time.Millisecond
	maxCheckpoints    = 8192
	defaultLogLines   = 100
	maxLogLines       = 10000
)

// checkpoint is the length of a log at a moment.
type checkpoint struct {
	t   time.Time
	off int64
}

// logFile is what the agent knows of one log file. Guarded by logBook.mu.
type logFile struct {
	gen     int          // rotations so far
	cur     []checkpoint // of the current file, oldest first
	rotated []checkpoint // of <path>.1
}

// logBook is the agent's notes on the logs it rotates.
type logBook struct {
	mu    sync.Mutex
	files map[string]*logFile // by path
}

func (b *logBook) file(path string) *logFile {
	if b.files == nil {
		b.files = map[string]*logFile{}
	}
	f := b.files[path]
	if f == nil {
		f = &logFile{}
		b.files[path] = f
	}
	return f
}

// rotatedPath is where a log's previous part is kept.
func rotatedPath(path string) string { return path + ".1" }

// watchLogs rotates and notes the lengths of the logs until the agent stops.
func (a *Agent) watchLogs() {
	t := time.NewTicker(logCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-a.rt.ctx.Done():
			return
		case <-t.C:
		}
		a.checkLogs()
	}
}

// checkLogs looks at every log once: see the top of this file.
func (a *Agent) checkLogs() {
	var paths []string
	a.rt.mu.Lock()
	for id := range a.rt.procs {
		paths = append(paths, a.logPath(id))
	}
	a.rt.mu.Unlock()
	if a.o.LogFile != "" {
		paths = append(paths, a.o.LogFile)
	}
	now := time.Now()
	b := &a.logs
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		f := b.file(p)
		if fi.Size() > a.o.LogMaxSize {
			if err := rotate(p); err != nil {
				a.o.Log.Printf("agent: rotate log %s: %v", p, err)
			} else {
				f.gen++
				f.rotated, f.cur = append(f.cur, checkpoint{now, fi.Size()}), nil
				fi, err = os.Stat(p)
				if err != nil {
					continue
				}
			}
		}
		if n := len(f.cur); n == 0 || f.cur[n-1].off != fi.Size() {
			f.cur = append(f.cur, checkpoint{now, fi.Size()})
			if len(f.cur) > maxCheckpoints { // keep every other one: coarser, as long
				thin := f.cur[:0]
				for i, c := range f.cur {
					if i%2 == 1 || i == len(f.cur)-1 {
						thin = append(thin, c)
					}
				}
				f.cur = thin
			}
		}
	}
	for p := range b.files {
		if !seen[p] {
			delete(b.files, p) // its record was pruned: nobody writes to it
		}
	}
}

// rotate copies the log at path to path.1 and truncates it.
func rotate(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := rotatedPath(path) + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// Copy until the end stays put, then truncate at once: what the app
	// writes in between the last copy and the truncation is lost.
	for range 3 {
		n, err := io.Copy(dst, src)
		if err != nil {
			dst.Close()
			os.Remove(tmp)
			return err
		}
		if n == 0 {
			break
		}
	}
	if err := os.Truncate(path, 0); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, rotatedPath(path))
}

// logQuery is what a log request asks for.
type logQuery struct {
	lines  int // < 0: all
	since  time.Time
	follow bool
}

func parseLogQuery(r *http.Request) (logQuery, error) {
	q := logQuery{lines: defaultLogLines}
	v := r.URL.Query()
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("since=%q: want an RFC 3339 time", s)
		}
		q.since = t
	}
	switch s := v.Get("follow"); s {
	case "", "0":
	case "1":
		q.follow = true
	default:
		return q, fmt.Errorf("follow=%q: want 1 or 0", s)
	}
	if !q.since.IsZero() || q.follow {
		q.lines = -1
	}
	switch s := v.Get("lines"); s {
	case "":
	case "all":
		q.lines = -1
	default:
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("lines=%q: want a number of lines (0 or more) or all", s)
		}
		q.lines = min(n, maxLogLines)
	}
	return q, nil
}

// handleLog streams an instance's log: the last ?lines= lines (default
// 100, at most 10,000; "all"; all by default with since or follow) of those
// written since ?since=, then with ?follow=1 what the instance writes
// until it is stopped, failed or exited (or the client goes). The id must
// be one the agent ran (a record, or a log left by an earlier agent);
// it names no path.
func (a *Agent) handleLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID.MatchString(id) {
		writeError(w, errStatus(http.StatusBadRequest, "log: instance id %q is not valid", id))
		return
	}
	q, err := parseLogQuery(r)
	if err != nil {
		writeError(w, errStatus(http.StatusBadRequest, "log of %s: %w", id, err))
		return
	}
	p := a.logPath(id)
	if _, err := os.Stat(p); err != nil {
		writeError(w, errStatus(http.StatusNotFound, "log of %s: no such instance", id))
		return
	}
	running := func() bool {
		a.rt.mu.Lock()
		defer a.rt.mu.Unlock()
		in, ok := a.rt.procs[id]
		return ok && !isFinal(in.info.State)
	}
	a.serveLog(w, r, p, q, running)
}

// handleAgentLog streams the agent's own log (Options.LogFile) like
// handleLog; following goes on until the client goes or the agent stops.
func (a *Agent) handleAgentLog(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogQuery(r)
	if err != nil {
		writeError(w, errStatus(http.StatusBadRequest, "agent log: %w", err))
		return
	}
	if a.o.LogFile == "" {
		writeError(w, errStatus(http.StatusNotFound, "agent log: this agent does not log to a file (its standard error is not one)"))
		return
	}
	if _, err := os.Stat(a.o.LogFile); err != nil {
		writeError(w, errStatus(http.StatusNotFound, "agent log: %v", err))
		return
	}
	a.serveLog(w, r, a.o.LogFile, q, func() bool { return true })
}

// position is a place in a log: in its rotated part or in the current one.
type position struct {
	rotated bool
	off     int64
}

// serveLog writes the part of the log at path that q asks for, then
// follows it while running says its writer may still write.
func (a *Agent) serveLog(w http.ResponseWriter, r *http.Request, path string, q logQuery, running func() bool) {
	old := rotatedPath(path)
	a.logs.mu.Lock()
	var gen int
	var cur, rot []checkpoint
	if f, ok := a.logs.files[path]; ok {
		gen, cur, rot = f.gen, append([]checkpoint(nil), f.cur...), append([]checkpoint(nil), f.rotated...)
	}
	curSize, oldSize := fileSize(path), fileSize(old) // with gen: no rotation in between
	a.logs.mu.Unlock()

	start := position{rotated: oldSize > 0}
	if !q.since.IsZero() {
		start = sinceStart(path, q.since, cur, rot, oldSize, curSize)
	}
	if q.lines >= 0 {
		start = tailStart(path, old, q.lines, start, oldSize, curSize)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if start.rotated {
		if err := copyRange(w, old, start.off, oldSize); err != nil {
			return
		}
		start = position{}
	}
	n, err := copyRangeN(w, path, start.off, curSize)
	if err != nil {
		return
	}
	_ = rc.Flush()
	if !q.follow {
		return
	}
	off := start.off + n
	wasRunning := true
	t := time.NewTicker(logFollowInterval)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.rt.ctx.Done():
			return
		case <-t.C:
		}
		a.logs.mu.Lock()
		g := gen
		if f, ok := a.logs.files[path]; ok {
			g = f.gen
		}
		size := fileSize(path)
		var rotated *os.File // opened under the lock: the part of this rotation
		if g != gen {
			rotated, _ = os.Open(old)
		}
		a.logs.mu.Unlock()
		if g != gen {
			// Rotated: what we did not send yet is at the end of the
			// rotated part (all of it if it rotated more than once since).
			from := off
			if g != gen+1 {
				from = 0
			}
			if rotated != nil {
				_, err := io.Copy(w, io.NewSectionReader(rotated, from, 1<<62))
				rotated.Close()
				if err != nil {
					return
				}
			}
			gen, off = g, 0
		}
		if size < off { // truncated by someone else
			off = 0
		}
		if size > off {
			// Rotated meanwhile, it sends less: the rest comes from the
			// rotated part at the next look.
			n, err := copyRangeN(w, path, off, size)
			if err != nil {
				return
			}
			off += n
		}
		if err := rc.Flush(); err != nil {
			return
		}
		// One more look after the writer ended: a container's output
		// arrives a moment after it.
		now := running()
		if !now && !wasRunning && size == off {
			return
		}
		wasRunning = now
	}
}

// sinceStart is where the lines written after since begin.
func sinceStart(path string, since time.Time, cur, rot []checkpoint, oldSize, curSize int64) position {
	// Not written to since: nothing.
	if fi, err := os.Stat(path); err == nil && fi.ModTime().Before(since) {
		return position{off: curSize}
	}
	if len(cur) == 0 && len(rot) == 0 {
		return position{rotated: oldSize > 0} // no notes: all of it
	}
	// The length last noted before since, in the rotated part then in the
	// current one.
	if i := sort.Search(len(rot), func(i int) bool { return !rot[i].t.Before(since) }); i < len(rot) {
		if i == 0 {
			return position{rotated: oldSize > 0}
		}
		return position{rotated: true, off: min(rot[i-1].off, oldSize)}
	}
	i := sort.Search(len(cur), func(i int) bool { return !cur[i].t.Before(since) })
	switch {
	case i == len(cur) && len(cur) > 0:
		return position{off: min(cur[len(cur)-1].off, curSize)}
	case i == 0 && len(rot) == 0:
		return position{}
	case i == 0:
		return position{} // the rotation happened before since
	}
	return position{off: min(cur[i-1].off, curSize)}
}

// tailStart is where the last n lines before the end (curSize of the
// current part) begin, not before start.
func tailStart(path, old string, n int, start position, oldSize, curSize int64) position {
	if n == 0 {
		return position{off: curSize}
	}
	from := int64(0)
	if !start.rotated {
		from = start.off
	}
	off, found := lastLines(path, from, curSize, n)
	if found >= n || !start.rotated {
		return position{off: off}
	}
	off, _ = lastLines(old, start.off, oldSize, n-found)
	return position{rotated: true, off: off}
}

// lastLines finds where the last n lines of the file's bytes [from, end)
// begin (a last line without its newline counts), and how many lines
// there are from there (n, or fewer when it reached from).
func lastLines(path string, from, end int64, n int) (int64, int) {
	f, err := os.Open(path)
	if err != nil || end <= from {
		return end, 0
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	pos := end
	found := 0
	// The newline that ends the last line does not start a line.
	skip := true
	for pos > from {
		size := min(int64(len(buf)), pos-from)
		pos -= size
		b := buf[:size]
		if _, err := f.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return end, 0
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			if skip && pos+int64(i) == end-1 {
				continue
			}
			found++
			if found == n {
				return pos + int64(i) + 1, found
			}
		}
		skip = false
	}
	if end > from {
		found++ // the first line, from from
	}
	return from, min(found, n)
}

// copyRange writes the file's bytes [from, to) to w.
func copyRange(w io.Writer, path string, from, to int64) error {
	_, err := copyRangeN(w, path, from, to)
	return err
}

// copyRangeN is copyRange that says how many bytes it sent: fewer when
// the file is shorter now.
func copyRangeN(w io.Writer, path string, from, to int64) (int64, error) {
	if to <= from {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, nil // gone: nothing to send
	}
	defer f.Close()
	return io.Copy(w, io.NewSectionReader(f, from, to-from))
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// agentLogFile is where the agent's standard error goes when that is a
// regular file (a VM backend started it with its output in agent.log),
// else "".
func agentLogFile() string {
	fi, err := os.Stderr.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	p, err := os.Readlink("/proc/self/fd/2")
	if err != nil || !filepath.IsAbs(p) {
		return ""
	}
	if pfi, err := os.Stat(p); err != nil || !os.SameFile(fi, pfi) {
		return ""
	}
	return p
}

// setUpAgentLog settles Options.LogFile and Options.Log (see Options).
func (o *Options) setUpAgentLog() error {
	if o.Log != nil {
		return nil // the caller's: LogFile is where it says, if anywhere
	}
	stderrFile := agentLogFile()
	if o.LogFile == "" {
		o.LogFile = stderrFile
	}
	if o.LogFile == "" {
		o.LogFile = filepath.Join(o.Dir, "agent.log")
	}
	var w io.Writer = os.Stderr
	if o.LogFile != stderrFile {
		if err := os.MkdirAll(filepath.Dir(o.LogFile), 0o755); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("agent: open its log: %w", err)
		}
		w = io.MultiWriter(os.Stderr, f) // open for the agent's life
	}
	o.Log = log.New(w, "", log.LstdFlags|log.Lmicroseconds)
	return nil
}
