package version

import (
	"runtime/debug"
	"sync"
)

var (
	once  sync.Once
	value string
)

// String is dflow's version: the module version when built from a tagged
// module, else the VCS revision (12 hex digits, "-dirty" when modified), else
// "devel".
func String() string {
	once.Do(func() {
		value = "devel"
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			value = v
			return
		}
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			value = rev + dirty
		}
	})
	return value
}
