// Package report renders dflow's answers for a terminal: the tables and
// summaries `dflow list`, `versions`, `releases`, `verify`, `health`,
// `gc`, `chaos-monkey --report`, `schedules` and `build` print in text
// mode (with -o json the CLI prints the same values as JSON), what the
// other commands say when they end (Release, Stopped, Copied, Provisioned,
// ScheduleCreated, Init, ServerState), and a failed command's last word
// (Failure). Each function writes one answer to an io.Writer, so the
// output is tested against golden files without running a cluster. Times
// are shown in the local time zone.
package report
