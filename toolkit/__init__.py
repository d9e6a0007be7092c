"""Rodeo: bake verified AMIs with Packer and Ansible, release them behind an ALB."""

__version__ = "0.1.0"
