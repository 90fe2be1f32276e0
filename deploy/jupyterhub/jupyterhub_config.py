# Example JupyterHub configuration for a hub whose users' home folders swarmkeeper keeps.
# Replace every CHANGE ME value. Authentication is left out: keep whatever authenticator you use.
#
# What swarmkeeper needs from the hub:
# - swarmkeeper_hook.py next to this file (or anywhere on PYTHONPATH);
# - the Swarm secret "swarmkeeper_api_token" mounted into the hub service, the same secret
#   swarmkeeper reads its API token from;
# - the hub and swarmkeeper on one overlay network, where swarmkeeper answers as
#   http://swarmkeeper:9464.
#
# Each spawn then registers the user with swarmkeeper and waits until their folder exists with its
# quota, so the NFS mount below never points at a folder that is not there yet.
import os
import sys

from docker.types import DriverConfig, Mount

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swarmkeeper_hook import make_pre_spawn_hook  # noqa: E402

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

# The proxy listens on 0.0.0.0:8000; the hub API on all interfaces so notebooks can reach it.
c.JupyterHub.ip = '0.0.0.0'
c.JupyterHub.port = 8000
c.JupyterHub.hub_ip = '0.0.0.0'

# One Swarm service per user, on the jupyterhub overlay network, reached by service name.
c.JupyterHub.spawner_class = 'dockerspawner.SwarmSpawner'
c.SwarmSpawner.network_name = 'jupyterhub'
c.SwarmSpawner.use_internal_ip = True
c.SwarmSpawner.image = 'quay.io/jupyter/datascience-notebook:latest'  # CHANGE ME
NOTEBOOK_DIR = '/home/jovyan/work'
c.SwarmSpawner.notebook_dir = NOTEBOOK_DIR
c.SwarmSpawner.cpu_limit = 1
c.SwarmSpawner.mem_limit = '512M'

# The per-user mount must match the HomeFolders resource ("nfs" in manifests/50-homefolders.yaml):
# same volume name template, driver and options, and the same way of turning a username into a
# folder name. `swarmkeeper homes spawner-config nfs` prints them from the stored resource; copy
# its source, driver name and options into the three values below. This file assumes
# `naming: escaped`, dockerspawner's own escaping, which `spawner.escaped_name` gives. Each node's
# Docker creates the per-user volume from these driver options on first use.
NFS_SERVER_IP = '192.0.2.10'  # CHANGE ME: the NFS server's internal address
VOLUME_TEMPLATE = 'jupyterhub-user-{username}'
VOLUME_DRIVER = 'local'
VOLUME_DRIVER_OPTIONS = {
    'type': 'nfs4',
    'o': f'addr={NFS_SERVER_IP},rw',
    'device': ':/var/nfs/{username}/',
}


def user_mounts(folder):
    """The home folder mount of one user; `folder` is the name HomeFolders gives the user's folder."""
    return [
        Mount(
            target=NOTEBOOK_DIR,
            source=VOLUME_TEMPLATE.format(username=folder),
            type='volume',
            no_copy=True,
            driver_config=DriverConfig(
                VOLUME_DRIVER,
                {key: value.format(username=folder) for key, value in VOLUME_DRIVER_OPTIONS.items()},
            ),
        )
    ]


wait_for_home_folder = make_pre_spawn_hook(
    api_url=os.environ.get('SWARMKEEPER_API_URL', 'http://swarmkeeper:9464'),
    token_file='/run/secrets/swarmkeeper_api_token',
    # Making a folder and setting a quota takes seconds; a minute covers a controller restart.
    timeout=60,
)


async def pre_spawn_hook(spawner):
    # Register and wait first: when swarmkeeper refuses or times out, the spawn fails here with
    # its message instead of later with a mount error.
    await wait_for_home_folder(spawner)
    # dockerspawner's SwarmSpawner mounts `volumes` as binds and does not template driver options,
    # so the per-user NFS volume is passed as an explicit mount.
    spawner.extra_container_spec = {
        **spawner.extra_container_spec,
        'mounts': user_mounts(spawner.escaped_name),
    }


c.Spawner.pre_spawn_hook = pre_spawn_hook
