"""Configs: defaults, a custom parser, plain, and uses in decorators, parameter defaults and switch keys."""
import os

from headwater import Config, FlowSpec, Parameter, config_expr, current, environment, retry, step


def kv_parser(text):
    """'a=1' lines -> {"a": "1"}."""
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip())


class ConfigFlow(FlowSpec):
    cfg = Config("cfg", default_value={"retries": 1, "greeting": "hi", "mode": "fast", "train": {"lr": 0.1}},
                 help="Main config")
    kv = Config("kv", default_value="alpha=1\nbeta=2", parser=kv_parser)
    raw = Config("raw", default_value="just text", plain=True)
    opt = Config("opt")
    greeting = Parameter("greeting", default=cfg.greeting)
    scaled = Parameter("scaled", default=lambda ctx: ctx.configs.cfg.retries * 10, type=int)

    @environment(vars={"HW_MODE": cfg.mode})
    @retry(times=config_expr("cfg.retries"), minutes_between_retries=0)
    @step
    def start(self):
        if current.retry_count < self.cfg.retries:
            raise RuntimeError("fail until the configured retry")
        self.seen = {
            "cfg_type": type(self.cfg).__name__, "lr": self.cfg.train.lr, "lr_item": self.cfg["train"]["lr"],
            "kv": self.kv.to_dict(), "raw": self.raw, "opt": self.opt, "greeting": self.greeting,
            "env_mode": os.environ.get("HW_MODE"), "attempt": current.retry_count, "scaled": self.scaled,
        }
        try:
            self.cfg = {"x": 1}
        except AttributeError as e:
            self.assign_error = str(e)
        try:
            self.cfg.train["lr"] = 1.0
        except TypeError as e:
            self.nested_error = str(e)
        self.choice = self.cfg.mode
        self.next({self.cfg.mode: self.fast, "slow": self.slow}, condition="choice")

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
        if os.environ.get("HW_FAIL_END"):
            raise RuntimeError("end failed on purpose")
        self.end_lr = self.cfg.train.lr


if __name__ == "__main__":
    ConfigFlow()
