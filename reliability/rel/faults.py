def run(res):
    raise NotImplementedError
