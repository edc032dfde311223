"""Compute backends beyond one machine: compilers and launchers for Kubernetes and Argo (launchers layer)."""
