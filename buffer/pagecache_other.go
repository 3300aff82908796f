//go:build !linux

package buffer

import bolt "go.etcd.io/bbolt"

// dropPageCache does nothing where the page cache is not known to keep large folios.
func dropPageCache(*bolt.DB, int64) {}
