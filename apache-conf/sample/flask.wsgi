# A small Flask application (Debian: apt-get install python3-flask), served by the sample sites of
# apache-conf/debian and apache-conf/docker.
import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route('/')
def index():
    return 'Hello from Flask under mod_wsgi, daemon process %d\n' % os.getpid()


@app.route('/info')
def info():
    return jsonify(path=request.path, script_name=request.environ.get('SCRIPT_NAME'),
                   process_group=request.environ.get('mod_wsgi.process_group'),
                   multiprocess=request.environ.get('wsgi.multiprocess'), uid=os.getuid())


application = app
