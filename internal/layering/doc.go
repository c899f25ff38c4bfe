// Package layering holds no code: its test keeps the package map true. The business
// rules import neither the AWS SDK nor aws-lambda-go, the CLI and the local server carry
// no test code, the functions' mains stay thin, and docs/ARCHITECTURE.md's package table
// names every package with what it imports.
package layering
