// Package local is the artifact store in a directory of this machine (the
// default, `artifacts.store: local`, is the project's .dflow/artifacts): the
// artifacts.Store contract over artifact.Store, which does the atomic,
// digest-checked, size- and disk-bounded writes. Only processes that see the
// directory share it.
package local
