# kdrec image for compose.yaml: the consumer, the scheduler and the app share it.
FROM python:3.11-slim
WORKDIR /srv/kdrec
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# The CPU build of torch first: a plain `torch` requirement would pull the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY core core
COPY store store
COPY stream stream
COPY jobs jobs
COPY app app
COPY cli cli
RUN pip install -e .
EXPOSE 8501
CMD ["kdrec", "--help"]
