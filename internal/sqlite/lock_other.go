//go:build !unix

package sqlite

import "os"

// lockFile takes no lock where flock does not exist (see Claim).
func lockFile(*os.File) error { return nil }
