package cli

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric"
)

// attachmentsPath is where serve reports the fabric's attachments, beside the API.
const attachmentsPath = "/fabric/attachments"

// AttachmentsResponse is the answer of GET /fabric/attachments.
type AttachmentsResponse struct {
	Attachments []fabric.AttachmentStatus `json:"Attachments"`
}

// attachmentsHandler serves GET /fabric/attachments (admin token) in front of the API, which
// gets every other request untouched. Without a fabric it answers InvalidAction.
func (o *fabricOptions) attachmentsHandler(next http.Handler, adminToken string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != attachmentsPath {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", http.MethodGet)
			writeAPIError(w, http.StatusMethodNotAllowed, api.CodeInvalidRequest, "use GET "+attachmentsPath)
		case !isBearer(r, adminToken):
			writeAPIError(w, http.StatusUnauthorized, api.CodeAuthFailure, "the fabric's attachments need the admin token")
		case o.fab == nil:
			writeAPIError(w, http.StatusNotFound, api.CodeInvalidAction, "this server runs no fabric (serve --fabric netns)")
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(AttachmentsResponse{Attachments: o.fab.Attachments()})
		}
	})
}

func isBearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get(api.HeaderAuthorization), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}

func newAttachmentsCmd(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "attachments [--wait DURATION]",
		Short: "Show where each --fabric-attach of the running server stands: instance, namespace, state and why",
		Long: `Show each attachment of the running server (fakecloud serve --fabric-attach): the instance it
is bound to, the namespace, and its state: waiting (no instance matches the name yet), attaching,
attached, or failed with the reason (the path is not a network namespace, it vanished, the
namespace's own routes overlap the VPC, ...). The fabric retries failed attachments by itself.

With --wait it polls until every attachment is attached and fails, printing the states and
reasons, if one is not by then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := g.resolveToken()
			if err != nil {
				return err
			}
			return g.showAttachments(cmd.Context(), token, wait)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for every attachment to be attached (0: show them once)")
	return cmd
}

func (g *globals) showAttachments(ctx context.Context, token string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		list, err := getAttachments(ctx, g.endpoint, token)
		if err != nil {
			return err
		}
		pending := notAttached(list)
		if len(pending) == 0 || wait <= 0 || time.Now().After(deadline) {
			if err := g.emit(AttachmentsResponse{Attachments: list}, attachmentTable(list)); err != nil {
				return err
			}
			if wait > 0 && len(pending) > 0 {
				return fmt.Errorf("not attached after %v: %s", wait, strings.Join(pending, "; "))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func notAttached(list []fabric.AttachmentStatus) []string {
	var out []string
	for _, a := range list {
		if a.State != fabric.AttachmentAttached {
			out = append(out, fmt.Sprintf("%s is %s (%s)", a.Name, a.State, orDash(a.Reason)))
		}
	}
	return out
}

func getAttachments(ctx context.Context, endpoint, token string) ([]fabric.AttachmentStatus, error) {
	url := strings.TrimSuffix(endpoint, "/") + attachmentsPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	req.Header.Set(api.HeaderAuthorization, "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("attachments from %s: %w (is fakecloud serve running there?)", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("attachments from %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			return nil, &e.Error
		}
		return nil, fmt.Errorf("attachments from %s: %s: %s", endpoint, resp.Status, strings.TrimSpace(string(body)))
	}
	var out AttachmentsResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("attachments from %s: %w", endpoint, err)
	}
	return out.Attachments, nil
}

func attachmentTable(list []fabric.AttachmentStatus) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		if len(list) == 0 {
			fmt.Fprintln(w, "no attachments (serve --fabric-attach NAME=PATH)")
			return
		}
		row(w, "NAME", "INSTANCE", "NETNS", "STATE", "REASON")
		for _, a := range list {
			row(w, a.Name, orDash(a.InstanceID), a.Netns, a.State, orDash(a.Reason))
		}
	}
}
