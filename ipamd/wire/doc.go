// Package wire is the versioned protocol between the flatnet CNI plugin and ipamd over ipamd's
// unix socket, and the format of the release spool. It is deliberately tiny: the CNI binary
// imports it, so it may import nothing but the standard library.
//
// One request per connection: the client writes one JSON Request, the server answers one JSON
// Response and closes. Spool files are the JSON of a ReleaseRequest, one file per owner.
package wire
