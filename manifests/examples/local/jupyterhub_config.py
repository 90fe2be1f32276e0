# Stand-in for manifests/jupyterhub_config.py (Config "jupyterhub-config"). The hub stand-in only
# sleeps; this file shows the config reaching the task at
# /usr/local/etc/jupyterhub/jupyterhub_config.py.
c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
c.JupyterHub.ip = '0.0.0.0'
c.JupyterHub.port = 8000
