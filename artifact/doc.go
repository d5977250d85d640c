// Package artifact makes, stores and unpacks the bundles dflow ships to nodes.
//
// A bundle is a reproducible tar.zst: entries sorted by path, parent directories
// included, mtimes, owners and modes normalized, compressed at a fixed zstd level with a
// single encoder goroutine, so the same files always give the same bytes and therefore the
// same digest (WriteBundle). A digest is the lowercase hex sha256 of the bundle's bytes.
//
// A Store keeps blobs by digest in a directory (<dir>/<digest>); writes go to a temp file,
// are hashed on the way, fsynced and renamed into place, so readers never see a partial
// blob and a blob whose content does not match its expected digest (or whose reader fails,
// even at its very end) is never stored. A Store is bounded: a blob larger than MaxSize
// (default 4 GiB) is refused with ErrTooLarge, one that would leave less free disk space
// than a reserve (default the larger of 256 MiB and 1% of the file system) with
// ErrNoSpace; both are checked before reading when the size is known, and while writing
// otherwise, and their messages name the size, the free bytes and the directory.
//
// Unpack extracts a bundle received from elsewhere and treats it as hostile: it refuses
// absolute paths, ".." components, symlinks that are absolute or escape the destination
// (following chains of links inside the bundle), all hard links, device files, fifos,
// sockets, setuid/setgid/sticky bits, duplicate entries, and bundles over the size or
// entry-count limits. It extracts into a temp directory next to the destination and renames
// it into place only when everything was accepted, so a refused or broken bundle leaves
// nothing behind.
package artifact
