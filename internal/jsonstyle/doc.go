// Package jsonstyle is a test helper: it checks that a JSON API keeps one key style, so that a
// field added without a json tag (and so keyed by its Go name) or in another API's style fails a
// test instead of reaching a client. fakecloud's API is PascalCase as EC2's is; ipamd's
// introspection API and wire protocol and the node agent's JSON are lowerCamel with
// initialisms in capitals, as Go and Kubernetes write them (docs/contributing.md#json-keys).
package jsonstyle
