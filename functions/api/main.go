// Command api is the HTTP API. In Lambda (behind API Gateway HTTP API) it
// serves API Gateway v2 events; with LISTEN_ADDR set it is a plain HTTP
// server for local runs (AUTH_MODE=jwt there).
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/awsenv"
	"github.com/huntaze/message-pipeline/internal/envconfig"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	environ := envconfig.Process()
	s, err := setup.Load(environ)
	if err != nil {
		log.Error("api cannot start", "error", err)
		os.Exit(1)
	}
	// Lambda puts the region and the role's credentials in the environment.
	awsCfg := awsenv.Config(environ)
	cfg, deps, err := setup.Build(ctx, s, awsCfg, log, os.Stdout)
	if err != nil {
		log.Error("api cannot start", "error", err)
		os.Exit(1)
	}
	srv, err := api.New(cfg, deps)
	if err != nil {
		log.Error("api cannot start", "error", err)
		os.Exit(1)
	}
	addr := environ["LISTEN_ADDR"]
	if addr == "" {
		lambda.Start(httpadapter.NewV2(srv).ProxyWithContext)
		return
	}
	hs := &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("api listening", "addr", addr)
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("api server", "error", err)
		os.Exit(1)
	}
}
