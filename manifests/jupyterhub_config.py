# JupyterHub configuration (Config "jupyterhub-config", mounted into the jupyterhubserver service
# at /usr/local/etc/jupyterhub/jupyterhub_config.py). Replace every CHANGE ME value.
#
# Per-user folders and quotas are kept by swarmkeeper's HomeFolders "nfs" (50-homefolders.yaml),
# so the stock SwarmSpawner is enough: the seed's fork that created folders is not needed.
from oauthenticator.google import GoogleOAuthenticator

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

# Authentication: Google OAuth. The client secret is the Swarm secret "oauth-client-secret".
c.JupyterHub.authenticator_class = GoogleOAuthenticator
c.GoogleOAuthenticator.oauth_callback_url = 'https://your.domain.org/hub/oauth_callback'  # CHANGE ME
c.GoogleOAuthenticator.client_id = 'CHANGE-ME.apps.googleusercontent.com'
with open('/run/secrets/oauth-client-secret') as secret_file:
    c.GoogleOAuthenticator.client_secret = secret_file.read().strip()
c.Authenticator.admin_users = {'youremail@gmail.com'}  # CHANGE ME

# The proxy listens on 0.0.0.0:8000, the hub API on all interfaces so notebooks can reach it.
c.JupyterHub.ip = '0.0.0.0'
c.JupyterHub.port = 8000
c.JupyterHub.hub_ip = '0.0.0.0'

# One Swarm service per user, on the jupyterhub overlay network.
c.JupyterHub.spawner_class = 'cassinyspawner.SwarmSpawner'
c.SwarmSpawner.jupyterhub_service_name = 'jupyterhubserver'
c.SwarmSpawner.networks = ['jupyterhub']

notebook_dir = '/home/jovyan/work'
c.SwarmSpawner.notebook_dir = notebook_dir

# CHANGE ME: the NFS server's internal address, as in 10-volumes.yaml and 50-homefolders.yaml.
NFS_SERVER_IP = '192.0.2.10'

# The spawner replaces {username} with md5hex(username): HomeFolders "nfs" uses naming md5.
c.SwarmSpawner.container_spec = {
    'args': ['/usr/local/bin/start-singleuser.sh'],
    'Image': 'jupyter/datascience-notebook:latest',
    'mounts': [
        {
            'type': 'volume',
            'source': 'jupyterhub-user-{username}',
            'target': notebook_dir,
            'no_copy': True,
            'driver_config': {
                'name': 'local',
                'options': {
                    'type': 'nfs4',
                    'o': 'addr=%s,rw' % NFS_SERVER_IP,
                    'device': ':/var/nfs/{username}/',
                },
            },
        }
    ],
}

# 1 CPU and 512 MB per user, as both limit and reservation (the seed's values).
c.SwarmSpawner.resource_spec = {
    'cpu_limit': int(1 * 1e9),
    'mem_limit': int(512 * 1e6),
    'cpu_reservation': int(1 * 1e9),
    'mem_reservation': int(512 * 1e6),
}
