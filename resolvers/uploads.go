package resolvers

import "github.com/brookhq/brook/store"

// errUploadsOff answers upload mutations on a node with no file storage.
var errUploadsOff = store.Conflict("file uploads are off on this server: it has no file storage configured")
