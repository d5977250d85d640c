// Package version tells which dflow this is, from the build information Go
// records in the binary (module version, or VCS revision and dirty flag).
package version
