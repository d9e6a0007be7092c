"""Ansible callback plugins the provision step loads (ANSIBLE_CALLBACK_PLUGINS points here)."""
