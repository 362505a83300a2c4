//go:build !unix

package member

import "os"

func ownedByMe(os.FileInfo) bool { return true }
