"""Deployment: docker-compose for production-shaped stacks, and the local no-Docker stack."""
