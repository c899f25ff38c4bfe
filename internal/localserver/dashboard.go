package localserver

import (
	"embed"
	"net/http"

	"github.com/halosync/halosync/internal/apierror"
)

// The dashboard's page, style and script, served from the binary: no file outside it, no
// other site, so it works offline.
//
//go:embed dashboard/index.html dashboard/style.css dashboard/app.js
var dashboardFiles embed.FS

// dashboardAssets are the files under /dashboard/ and their content types.
var dashboardAssets = map[string]string{
	"style.css": "text/css; charset=utf-8",
	"app.js":    "text/javascript; charset=utf-8",
}

// pageHeaders: the page loads only its own files and talks only to this server, no other
// site may frame it, and nothing about it is cached or sent on as a referrer.
func pageHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("content-type", contentType)
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, "index.html", "text/html; charset=utf-8")
}

func (s *Server) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("asset")
	ct, ok := dashboardAssets[name]
	if !ok {
		apierror.Write(w, apierror.NotFound, "no such dashboard file")
		return
	}
	s.serveAsset(w, name, ct)
}

func (s *Server) serveAsset(w http.ResponseWriter, name, contentType string) {
	data, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil { // embedded: cannot happen
		apierror.Write(w, apierror.Internal, "the dashboard file is missing")
		return
	}
	pageHeaders(w, contentType)
	_, _ = w.Write(data)
}

// recentDeliveries answers the newest delivery records the worker wrote (RecentDeliveries
// at most, newest first), those of ?connection= only when given.
func (s *Server) recentDeliveries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.recent.list(r.URL.Query().Get("connection")))
}
