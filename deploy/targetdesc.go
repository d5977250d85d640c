package deploy

// TargetDesc is what a package reader returns: what a package is and what can
// be built from it.
type TargetDesc struct {
	File        string      `json:"file"` // the package file it was read from
	Package     string      `json:"package"`
	Version     string      `json:"version"` // the package's own version field
	Library     *Component  `json:"library,omitempty"`
	Executables []Component `json:"executables,omitempty"`
	TestSuites  []Component `json:"test_suites,omitempty"`
	SourceFiles []string    `json:"source_files,omitempty"` // extra-source-files, data-files, ...
}

// Component is one library, executable or test suite of a package.
type Component struct {
	Name         string   `json:"name"`
	Type         string   `json:"type,omitempty"` // a test suite's type: exitcode-stdio-1.0, detailed-0.9
	MainIs       string   `json:"main_is,omitempty"`
	SourceDirs   []string `json:"source_dirs,omitempty"`
	Modules      []string `json:"modules,omitempty"`
	BuildDepends []string `json:"build_depends,omitempty"`
}
