package controlplane

import (
	"fmt"
	"path/filepath"

	"github.com/distributive-flow/dflow/deploy"
)

// Validate is `dflow config validate`: it finds dflow.yaml in dir or a
// parent and returns its path and every problem in it (none: the file is
// valid). Nothing is started.
func Validate(dir string) (path string, problems []error, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return "", nil, err
	}
	if path, err = deploy.Find(dir); err != nil || path == "" {
		if err == nil {
			err = fmt.Errorf("config validate: no %s in %s or its parents; `dflow init` writes one", deploy.FileName, dir)
		}
		return "", nil, err
	}
	return path, deploy.Problems(path, filepath.Dir(path)), nil
}
