"""Tests on moto: the AWS calls, the tables and buckets, and the stack deployed from template.yaml."""
