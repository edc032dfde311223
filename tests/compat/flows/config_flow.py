"""A Config read in steps and in a decorator, and a parameter default from it (compat fixture)."""

from metaflow import Config, FlowSpec, Parameter, config_expr, environment, step


class ConfigFlow(FlowSpec):
    """Route on a config value; the config sets an environment variable and a default."""

    cfg = Config("cfg", default_value={"mode": "fast", "env": "from-config", "sizes": [1, 2], "deep": {"k": "v"}})
    size = Parameter("size", default=config_expr("cfg.sizes[1]"))

    @environment(vars={"FROM_CFG": config_expr("cfg.env")})
    @step
    def start(self):
        import os

        self.mode = self.cfg.mode
        self.env_var = os.environ.get("FROM_CFG")
        self.sizes = list(self.cfg.sizes)
        self.deep = self.cfg.deep.k
        self.as_dict = dict(self.cfg.to_dict())
        self.cfg_type = type(self.cfg).__name__
        self.next({"fast": self.fast, "slow": self.slow}, condition="mode")

    @step
    def fast(self):
        self.path = "fast"
        self.next(self.end)

    @step
    def slow(self):
        self.path = "slow"
        self.next(self.end)

    @step
    def end(self):
        self.summary = (self.path, self.size)


if __name__ == "__main__":
    ConfigFlow()
