"""S3(run=self) inside steps: the start step writes under the run's S3 root, a foreach
reads it back in parallel tasks, and end reads every object the run wrote."""

from headwater import S3, FlowSpec, current, step


class S3ToolsFlow(FlowSpec):
    @step
    def start(self):
        with S3(run=self) as s3:
            self.root_url = s3.put("greeting.txt", f"hello from {current.run_id}")
            s3.put_many([(f"parts/{i}", str(i * i)) for i in range(3)])
        self.parts = [0, 1, 2]
        self.next(self.square, foreach="parts")

    @step
    def square(self):
        with S3(run=self) as s3:
            self.value = int(s3.get(f"parts/{self.input}").text)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        with S3(run=self) as s3:
            self.greeting = s3.get("greeting.txt").text
            self.keys = sorted(o.key for o in s3.list_recursive())


if __name__ == "__main__":
    S3ToolsFlow()
