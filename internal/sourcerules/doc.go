// Package sourcerules holds tests of rules over the repository's own Go
// source, not over what it does: no function over MaxFunctionLines lines
// in functions/, internal/, infra/, cmd/, devstack/ and scraper/ (outside
// the CDK assembly listed in cdkAssembly).
package sourcerules

// MaxFunctionLines is the longest a function may be, from its func line to
// its closing brace.
const MaxFunctionLines = 60
