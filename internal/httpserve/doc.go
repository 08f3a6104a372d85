// Package httpserve builds the project's HTTP servers with every timeout set: reading the
// headers, reading the whole request (a slow body is cut), writing the answer, and an idle
// keep-alive connection. net/http bounds none of these but the ones it is told, so a server with
// ReadHeaderTimeout alone keeps an idle connection, or one announcing a body it never sends,
// open for ever. A handler that must answer later on purpose (a long poll) moves its own write
// deadline with http.ResponseController.
package httpserve
