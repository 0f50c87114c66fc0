# Single-user server settings that hold for every user.
import os

c = get_config()  # noqa: F821

# The shared environment's kernel (named python3, found through JUPYTER_PATH)
# is the default; it runs /opt/conda/bin/python, not the server's Python.
c.MultiKernelManager.default_kernel_name = "python3"
c.ServerApp.root_dir = os.path.expanduser("~")  # the user's home volume (USER_HOME)
# Nothing phones home: no Jupyter news feed, no update check (egress is closed in production).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# A visitor (a colleague the owner shared this server with) loses it as soon as the hub ends the share.
c.ServerApp.jpserver_extensions.update({"hubstack_visitors": True})
