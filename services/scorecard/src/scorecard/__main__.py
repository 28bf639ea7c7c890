import asyncio

from scorecard.service import main

asyncio.run(main())
