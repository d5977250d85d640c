// Package srcwatch tells when a project's sources change: it watches a
// directory tree (build outputs, dflow's state and version control
// skipped, directories created later included) and reports a change once
// the tree has been quiet for a debounce interval. `dflow deploy --watch`
// deploys on each report.
package srcwatch
